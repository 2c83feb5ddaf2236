import type { Dispatch } from '../../protocol/index.ts'
import type { Grant } from '../pool/grant.ts'
import type { Generation } from './generation.ts'

/** The dispatch frame that sends a granted attempt to its agent, whoever sends it (the PoolObject or the Worker). */
export function dispatchOf(grant: Grant, generation: Generation): Dispatch {
  return { type: 'dispatch', task_id: grant.taskId, pool: grant.poolId, deadline_ms: grant.runTimeoutMs, ...generation }
}
