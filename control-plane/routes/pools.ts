import { Hono } from 'hono'
import { LlorchError, PatchPoolRequest, PoolCommand, PoolCommandRequest } from '../../protocol/index.ts'
import type { PoolCommandResult, PoolList } from '../../protocol/index.ts'
import type { AppEnv, Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import { readJson } from '../middleware/validate-json.ts'
import type { PoolStatus } from '../pool/pool-status.ts'
import { listNodes } from '../registry/nodes.ts'
import { findPool, listPools, policyOf, updatePoolPolicy } from '../registry/pools.ts'
import { listAllReplicas, listReplicasOfPool } from '../registry/replicas.ts'
import { poolView } from './views.ts'

/** Live numbers come from the PoolObject; the listing still answers (with nulls) if it cannot. */
async function liveStatus(env: Bindings, poolId: string): Promise<PoolStatus | null> {
  try {
    return await env.POOLS.getByName(poolId).status()
  } catch (error) {
    logError('pool.status_failed', { pool: poolId, error: String(error) })
    return null
  }
}

/** `/v2/pools`: pools, their replicas and policy, and preload / drain / reload. Admin only. */
export const poolRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const db = c.var.registry()
    const [rows, replicas] = await Promise.all([listPools(db), listAllReplicas(db)])
    const statuses = await Promise.all(rows.map((row) => liveStatus(c.env, row.id)))
    const list: PoolList = {
      pools: rows.map((row, i) =>
        poolView(
          row,
          replicas.filter((r) => r.poolId === row.id),
          statuses[i] ?? null,
        ),
      ),
    }
    return c.json(list)
  })
  .post('/:id{.+}/:command{preload|drain|reload}', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    const command = PoolCommand.parse(c.req.param('command'))
    const body = await readJson(c, PoolCommandRequest, { emptyAs: {} })
    if (!(await findPool(db, id))) throw new LlorchError('not_found', `no pool "${id}"`)
    const replicas = (await listReplicasOfPool(db, id)).filter((r) => r.state !== 'lost')
    if (replicas.length === 0) throw new LlorchError('no_replica', `pool "${id}" has no replica on a connected node`)
    const deadlineMs = body.deadline_ms
    const pool = c.env.POOLS.getByName(id)
    let result: PoolCommandResult
    if (command === 'reload') {
      // The pool rolls it one replica at a time; later nodes follow as earlier ones are ready again.
      const answer = await pool.reload({ ...(deadlineMs !== undefined ? { deadlineMs } : {}) })
      if (answer.nodes.length === 0)
        throw new LlorchError('conflict', `no replica of pool "${id}" runs: nothing to reload; POST /v2/pools/${id}/preload starts them`)
      result = { pool: id, command, nodes: answer.nodes, rolling_order: answer.rolling }
    } else {
      // A drain stays until a preload: the pool starts nothing meanwhile. A cordoned node starts nothing either.
      await pool.setMaintenance(command === 'drain')
      const cordoned = command === 'preload' ? new Set((await listNodes(db)).filter((n) => n.cordonedAt !== null).map((n) => n.id)) : new Set<string>()
      const targets = replicas.filter((r) => !cordoned.has(r.nodeId))
      const nodes = await Promise.all(
        targets.map(async (r) => {
          const sent = await c.env.NODES.getByName(r.nodeId).command({ command, pool: id, deadlineMs })
          return { node_id: r.nodeId, ok: sent.ok, error: sent.error }
        }),
      )
      result = { pool: id, command, nodes }
    }
    return c.json(result, result.nodes.every((n) => n.ok) ? 202 : 502)
  })
  .get('/:id{.+}', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    const row = await findPool(db, id)
    if (!row) throw new LlorchError('not_found', `no pool "${id}"`)
    return c.json(poolView(row, await listReplicasOfPool(db, id), await liveStatus(c.env, id)))
  })
  .patch('/:id{.+}', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    const patch = await readJson(c, PatchPoolRequest)
    const row = await updatePoolPolicy(db, id, patch, new Date())
    if (!row) throw new LlorchError('not_found', `no pool "${id}"`)
    // Admission reads the policy from the PoolObject, never from the registry.
    await c.env.POOLS.getByName(id).setPolicy(policyOf(row))
    return c.json(poolView(row, await listReplicasOfPool(db, id), await liveStatus(c.env, id)))
  })
