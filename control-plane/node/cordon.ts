import { LlorchError } from '../../protocol/index.ts'
import type { NodeDrainResult } from '../../protocol/index.ts'
import type { Registry } from '../../db/client.ts'
import type { Bindings } from '../runtime/env.ts'
import { logEvent } from '../runtime/log.ts'
import { findNode, setNodeCordon } from '../registry/nodes.ts'
import { listReplicasOfNode } from '../registry/replicas.ts'

/**
 * Cordons a node for maintenance: every pool it serves stops placing tasks on it and never
 * starts its replica, then the node drains each pool (in-flight tasks get `deadlineMs`). The
 * cordon is in the registry and in each pool's Durable Object, so it outlives restarts.
 */
export async function cordonNode(
  env: Bindings,
  db: Registry,
  { id, deadlineMs, now }: { id: string; deadlineMs?: number; now: Date },
): Promise<NodeDrainResult> {
  if (!(await findNode(db, id))) throw new LlorchError('not_found', `no node with id "${id}"`)
  const replicas = (await listReplicasOfNode(db, id)).filter((r) => r.state !== 'lost')
  if (replicas.length === 0) throw new LlorchError('no_replica', `node "${id}" serves no pool on a connected agent`)
  await setNodeCordon(db, { id, at: now })
  logEvent('node.cordoned', { node: id, pools: replicas.length })
  const node = env.NODES.getByName(id)
  const pools = await Promise.all(
    replicas.map(async (r) => {
      await env.POOLS.getByName(r.poolId).cordon(id, true)
      const result = await node.command({ command: 'drain', pool: r.poolId, deadlineMs })
      return { pool: r.poolId, ok: result.ok, error: result.error }
    }),
  )
  return { node_id: id, command: 'drain', pools }
}

/** Lifts the cordon: the node's replicas take tasks again, and each pool's policy decides what starts. */
export async function uncordonNode(env: Bindings, db: Registry, { id }: { id: string }): Promise<void> {
  if (!(await findNode(db, id))) throw new LlorchError('not_found', `no node with id "${id}"`)
  const replicas = await listReplicasOfNode(db, id)
  await Promise.all(replicas.map((r) => env.POOLS.getByName(r.poolId).cordon(id, false)))
  await setNodeCordon(db, { id, at: null })
  logEvent('node.uncordoned', { node: id, pools: replicas.length })
}
