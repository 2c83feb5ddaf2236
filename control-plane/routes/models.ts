import { Hono } from 'hono'
import type { ModelList } from '../../protocol/index.ts'
import type { AppEnv } from '../runtime/env.ts'
import { listPools } from '../registry/pools.ts'
import { listAllReplicas } from '../registry/replicas.ts'

/** `GET /v1/models`: every pool some node has registered a replica for. */
export const modelRoutes = new Hono<AppEnv>().get('/v1/models', async (c) => {
  const db = c.var.registry()
  const [pools, replicas] = await Promise.all([listPools(db), listAllReplicas(db)])
  const served = new Set(replicas.map((r) => r.poolId))
  const list: ModelList = {
    object: 'list',
    data: pools
      .filter((p) => served.has(p.id))
      .map((p) => ({ id: p.id, object: 'model', created: Math.floor(p.createdAt.getTime() / 1000), owned_by: 'llorch' })),
  }
  return c.json(list)
})
