import { AffinityTable, placeTask } from './placement.ts'
import type { PlacementCandidate } from './placement.ts'
import { PRIORITY_RANK } from './queue-order.ts'
import type { TaskRow } from './task-row.ts'

/** A grant its node no longer streams is taken back only after this grace (its dispatch may be in flight). */
export const UNSTREAMED_GRANT_GRACE_MS = 2_000
/** Weight of the newest task in the pool's running average task length. */
const AVERAGE_TASK_WEIGHT = 0.2

/**
 * Whether a grant's dispatch may still be on its way to its node. Only a grant this instance
 * made recently can be: one from before a restart of the object belongs to a Worker request that
 * already reached its node, or died with the restart (a ghost).
 */
export function mayBeInFlight(grantedAt: number | null, { startedAt, now }: { startedAt: number; now: number }): boolean {
  const at = grantedAt ?? 0
  return at >= startedAt && at + UNSTREAMED_GRANT_GRACE_MS >= now
}

/** The running average task length after a task that held its slot `durationMs`. */
export function nextAverageTaskMs(averageMs: number, durationMs: number): number {
  return averageMs * (1 - AVERAGE_TASK_WEIGHT) + durationMs * AVERAGE_TASK_WEIGHT
}

/**
 * The next grant the pump makes: the first task in service order whose Worker waits for it,
 * on the replica placement picks for it (off the node it is avoiding), or null when that task
 * finds no free slot. Only the head waits: a later task never takes a slot before it. While
 * batch tasks hold the pool's whole batch share (`batchFull`), batch tasks wait and an
 * interactive task behind them goes first.
 */
export function nextGrant({
  queue,
  isWaiting,
  placeable,
  affinityKeyOf,
  affinity,
  batchFull,
  now,
}: {
  /** Queued tasks in service order. */
  queue: readonly TaskRow[]
  isWaiting: (taskId: string) => boolean
  placeable: readonly PlacementCandidate[]
  affinityKeyOf: (taskId: string) => string | undefined
  affinity: AffinityTable
  /** Asked at most once, and only when a batch task is next: it counts the pool's batch grants. */
  batchFull: () => boolean
  now: number
}): { task: TaskRow; replica: PlacementCandidate; affinityKey: string | undefined } | null {
  let full: boolean | undefined
  const task = queue.find((row) => isWaiting(row.task_id) && !(row.priority_rank === PRIORITY_RANK.batch && (full ??= batchFull())))
  if (!task) return null
  const avoiding = task.avoid_node !== null && (task.avoid_until ?? 0) > now
  const affinityKey = affinityKeyOf(task.task_id)
  const replica = placeTask(
    placeable.filter((c) => !avoiding || c.nodeId !== task.avoid_node),
    affinityKey,
    affinity,
  )
  return replica ? { task, replica, affinityKey } : null
}
