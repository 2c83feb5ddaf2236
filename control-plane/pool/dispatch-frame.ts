import type { Dispatch, EngineCall } from '../../protocol/index.ts'
import type { Grant } from './grant.ts'

/** The dispatch frame that sends a granted attempt to its agent, whoever sends it (the PoolObject or the Worker). */
export function dispatchOf(grant: Grant, generation: EngineCall): Dispatch {
  return { type: 'dispatch', task_id: grant.taskId, pool: grant.poolId, deadline_ms: grant.runTimeoutMs, ...generation }
}
