import { Hono } from 'hono'
import { BatchListQuery } from '../../protocol/index.ts'
import type { AdminBatchList } from '../../protocol/index.ts'
import { listBody } from '../batch/list-body.ts'
import { ALL_BATCHES_LISTING } from '../listing-object.ts'
import { readQuery } from '../middleware/validate-query.ts'
import type { AppEnv } from '../runtime/env.ts'

/** `GET /v2/batches`: every key's batches, newest first, paged as `/v1/batches` is. Admin. */
export const adminBatchRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const query = readQuery(c, BatchListQuery)
  const page = await c.env.LISTINGS.getByName(ALL_BATCHES_LISTING).page({ kind: 'batch', after: query.after, limit: query.limit, order: 'desc' })
  const views = await Promise.all(page.entries.map((entry) => c.env.BATCHES.getByName(entry.id).adminView()))
  const body: AdminBatchList = listBody(page, views)
  return c.json(body)
})
