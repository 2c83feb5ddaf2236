/**
 * Where a task stands in its pool's table. `ended` is never stored: the row is deleted, which is
 * what frees the slot. Busy slots are the granted rows of a replica, never a counter.
 */
export type TaskPhase = 'queued' | 'granted' | 'ended'

/** Allowed moves; every change of a task row goes through `assertTaskTransition`. */
export const TASK_TRANSITIONS = {
  /** Placed on a replica; or cancelled, or past its wait deadline. */
  queued: ['granted', 'ended'],
  /** Failed before its first token and back at the head of the queue; or released. */
  granted: ['queued', 'ended'],
  ended: [],
} as const satisfies Record<TaskPhase, readonly TaskPhase[]>

export class IllegalTaskTransitionError extends Error {
  override readonly name = 'IllegalTaskTransitionError'
  readonly taskId: string
  readonly from: TaskPhase
  readonly to: TaskPhase

  constructor({ taskId, from, to }: { taskId: string; from: TaskPhase; to: TaskPhase }) {
    super(`task ${taskId} cannot go from ${from} to ${to}`)
    this.taskId = taskId
    this.from = from
    this.to = to
  }
}

export function assertTaskTransition(taskId: string, from: TaskPhase, to: TaskPhase): void {
  const allowed: readonly TaskPhase[] = TASK_TRANSITIONS[from]
  if (!allowed.includes(to)) throw new IllegalTaskTransitionError({ taskId, from, to })
}
