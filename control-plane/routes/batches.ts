import { Hono } from 'hono'
import { BatchId, BatchListQuery, CreateBatchRequest, refusalError } from '../../protocol/index.ts'
import type { BatchList } from '../../protocol/index.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'
import { batchCaller, pathId } from '../batch/batch-caller.ts'
import { newBatchId } from '../batch/file-writer.ts'
import { itemOf, listBody } from '../batch/list-body.ts'
import { keyListing } from '../batch/listing-store.ts'
import { readJson } from '../middleware/validate-json.ts'
import { readQuery } from '../middleware/validate-query.ts'
import { listPools } from '../registry/pools.ts'

/**
 * `/v1/batches`, OpenAI's: create a batch from an uploaded file (answered `validating`; every line
 * is checked before any runs), see it, list the calling key's batches, cancel one. Only the key
 * that made a batch sees it.
 */
export const batchRoutes = new Hono<InferenceEnv>()
  .post('/v1/batches', async (c) => {
    const owner = batchCaller(c)
    const request = await readJson(c, CreateBatchRequest)
    const knownModels = (await listPools(c.var.registry())).map((pool) => pool.id)
    const batchId = newBatchId()
    const created = await c.env.BATCHES.getByName(batchId).create({
      batchId,
      apiKeyId: owner.keyId,
      keyLimits: owner.limits,
      endpoint: request.endpoint,
      inputFileId: request.input_file_id,
      metadata: request.metadata ?? null,
      knownModels,
    })
    if (!created.ok) throw refusalError(created)
    return c.json(created.value)
  })
  .get('/v1/batches', async (c) => {
    const owner = batchCaller(c)
    const query = readQuery(c, BatchListQuery)
    const page = await c.env.LISTINGS.getByName(keyListing(owner.keyId)).page({ kind: 'batch', after: query.after, limit: query.limit, order: 'desc' })
    const views = await Promise.all(
      page.entries.map(async (entry) => itemOf(await c.env.BATCHES.getByName(entry.id).view({ apiKeyId: owner.keyId }))?.batch ?? null),
    )
    const body: BatchList = listBody(page, views)
    return c.json(body)
  })
  .get('/v1/batches/:id', async (c) => {
    const owner = batchCaller(c)
    const viewed = await c.env.BATCHES.getByName(pathId(c, BatchId, 'batch')).view({ apiKeyId: owner.keyId })
    if (!viewed.ok) throw refusalError(viewed)
    return c.json(viewed.value.batch)
  })
  .post('/v1/batches/:id/cancel', async (c) => {
    const owner = batchCaller(c)
    const cancelled = await c.env.BATCHES.getByName(pathId(c, BatchId, 'batch')).cancel({ apiKeyId: owner.keyId })
    if (!cancelled.ok) throw refusalError(cancelled)
    return c.json(cancelled.value.batch)
  })
