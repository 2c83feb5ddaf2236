import { Hono } from 'hono'
import { BatchId, BatchListQuery, refusalError } from '../../protocol/index.ts'
import type { AdminBatch, AdminBatchList } from '../../protocol/index.ts'
import type { ViewedBatch } from '../batch/batch-calls.ts'
import { pathId } from '../batch/batch-caller.ts'
import { itemOf, listBody } from '../batch/list-body.ts'
import { ALL_BATCHES_LISTING } from '../batch/listing-store.ts'
import { readQuery } from '../middleware/validate-query.ts'
import type { AppEnv } from '../runtime/env.ts'

const OPERATOR = { operator: true } as const

const adminBatch = ({ batch, apiKeyId }: ViewedBatch): AdminBatch => ({ ...batch, api_key_id: apiKeyId })

/** `/v2/batches`: every key's batches, newest first, paged as `/v1/batches` is; one of them; cancel one. Admin. */
export const adminBatchRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const query = readQuery(c, BatchListQuery)
    const page = await c.env.LISTINGS.getByName(ALL_BATCHES_LISTING).page({ kind: 'batch', after: query.after, limit: query.limit, order: 'desc' })
    const views = await Promise.all(page.entries.map(async (entry) => itemOf(await c.env.BATCHES.getByName(entry.id).view(OPERATOR))))
    const body: AdminBatchList = listBody(
      page,
      views.map((view) => (view ? adminBatch(view) : null)),
    )
    return c.json(body)
  })
  .get('/:id', async (c) => {
    const viewed = await c.env.BATCHES.getByName(pathId(c, BatchId, 'batch')).view(OPERATOR)
    if (!viewed.ok) throw refusalError(viewed)
    return c.json(adminBatch(viewed.value))
  })
  .post('/:id/cancel', async (c) => {
    const cancelled = await c.env.BATCHES.getByName(pathId(c, BatchId, 'batch')).cancel(OPERATOR)
    if (!cancelled.ok) throw refusalError(cancelled)
    return c.json(adminBatch(cancelled.value))
  })
