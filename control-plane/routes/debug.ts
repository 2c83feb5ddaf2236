import { Hono } from 'hono'
import { PoolCeilingRequest } from '../../protocol/index.ts'
import { measurePoolCeiling } from '../debug/pool-ceiling.ts'
import { readJson } from '../middleware/validate-json.ts'
import { costCounts } from '../runtime/cost-counts.ts'
import type { AppEnv } from '../runtime/env.ts'

/**
 * `GET /v2/debug/costs`: this isolate's Durable Object entry points, storage writes and critical
 * path. `POST /v2/debug/pool-ceiling`: the tasks per second one PoolObject sustains (the bench
 * asks). Admin only.
 */
export const debugRoutes = new Hono<AppEnv>()
  .get('/costs', (c) => c.json(costCounts()))
  .post('/pool-ceiling', async (c) => c.json(await measurePoolCeiling(c.env, await readJson(c, PoolCeilingRequest))))
