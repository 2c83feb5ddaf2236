import { transition } from '../../protocol/index.ts'

/**
 * Where a task stands in its pool's table. `ended` is never stored: the row is deleted, which is
 * what frees the slot. Busy slots are the granted rows of a replica, never a counter.
 */
export type TaskPhase = 'queued' | 'granted' | 'ended'

/** Allowed moves; every change of a task row goes through `moveTask`. */
export const TASK_TRANSITIONS = {
  /** Placed on a replica; or cancelled, or past its wait deadline. */
  queued: ['granted', 'ended'],
  /** Failed before its first token and back at the head of the queue; or released. */
  granted: ['queued', 'ended'],
  ended: [],
} as const satisfies Record<TaskPhase, readonly TaskPhase[]>

/** Checks a task row's move; throws `IllegalTransitionError` for one the table does not allow. */
export function moveTask(taskId: string, from: TaskPhase, to: TaskPhase): TaskPhase {
  return transition<TaskPhase>(TASK_TRANSITIONS, from, to, { machine: 'pool task', subject: `task ${taskId}` })
}
