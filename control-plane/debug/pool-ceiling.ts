import type { PoolCeilingRequest, PoolCeilingResult, ReplicaReport } from '../../protocol/index.ts'
import type { Bindings } from '../runtime/env.ts'

/**
 * How many tasks per second one PoolObject admits and releases when nothing else limits it: a
 * scratch pool (its own name each run) learns of `nodes` fake ready replicas, then `tasks`
 * admit → release cycles run, `concurrency` at a time. No agent or engine takes part: the
 * pool sees only starts and ends, so this is the ceiling of one pool's serialised bookkeeping.
 */
export async function measurePoolCeiling(env: Bindings, spec: PoolCeilingRequest): Promise<PoolCeilingResult> {
  const poolId = `ceiling-${crypto.randomUUID()}`
  const pool = env.POOLS.getByName(poolId)
  await pool.setPolicy({ queue_capacity: spec.tasks, idle_drain_ms: null })
  for (let n = 0; n < spec.nodes; n++) {
    const report: ReplicaReport = { pool: poolId, engine: 'openai', state: 'ready', slots: spec.slots, slots_busy: 0, breaker_open: false }
    await pool.syncReplica(`${poolId}-node-${n}`, report, [])
  }
  let started = 0
  let errors = 0
  const cycle = async () => {
    while (started < spec.tasks) {
      const taskId = `${poolId}-task-${started++}`
      const admitted = await pool.admit({ taskId, priority: undefined, apiKeyId: null })
      if (!admitted.ok) {
        errors += 1
        continue
      }
      await pool.release(taskId, admitted.grant.attempt, 'completed', { usage: null, ttftMs: 1 })
    }
  }
  const startedAt = Date.now()
  await Promise.all(Array.from({ length: spec.concurrency }, cycle))
  const wallMs = Date.now() - startedAt
  return {
    pool: poolId,
    tasks: spec.tasks,
    concurrency: spec.concurrency,
    nodes: spec.nodes,
    slots: spec.slots,
    errors,
    wall_ms: wallMs,
    tasks_per_second: Math.round((spec.tasks * 1_000) / Math.max(1, wallMs)),
  }
}
