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
  const task = headOfQueue(queue, isWaiting, batchFull)
  if (!task) return null
  const affinityKey = affinityKeyOf(task.task_id)
  const replica = placeTask(
    placeable.filter((c) => c.nodeId !== avoidedNode(task, now)),
    affinityKey,
    affinity,
  )
  return replica ? { task, replica, affinityKey } : null
}

/** A granted batch line whose slot a task takes, and the node that slot is on. */
export interface PreemptedLine {
  line: TaskRow
  nodeId: string
}

/**
 * When the next grant finds no free slot for an interactive task at the head of the queue: that
 * task, and the batch line whose slot it takes, the latest granted (it loses the least work) on
 * a ready replica the task may go to; null when the head is a batch task or no batch line holds
 * such a slot.
 */
export function preemptionFor({
  queue,
  isWaiting,
  batchFull,
  placeable,
  preemptible,
  now,
}: {
  queue: readonly TaskRow[]
  isWaiting: (taskId: string) => boolean
  batchFull: () => boolean
  placeable: readonly PlacementCandidate[]
  /** Granted batch lines, the latest first; asked only when an interactive task is next. */
  preemptible: () => readonly TaskRow[]
  now: number
}): { task: TaskRow; preempted: PreemptedLine } | null {
  const task = headOfQueue(queue, isWaiting, batchFull)
  if (!task || task.priority_rank === PRIORITY_RANK.batch) return null
  const preempted = preemptibleLine(preemptible(), placeable, avoidedNode(task, now))
  return preempted ? { task, preempted } : null
}

/** The first of `lines` (granted batch lines, the latest first) on a ready replica other than `avoided`. */
export function preemptibleLine(lines: readonly TaskRow[], placeable: readonly PlacementCandidate[], avoided: string | null): PreemptedLine | null {
  const usable = new Set(placeable.filter((c) => c.state === 'ready' && c.nodeId !== avoided).map((c) => c.nodeId))
  for (const line of lines) if (line.node_id !== null && usable.has(line.node_id)) return { line, nodeId: line.node_id }
  return null
}

/** The first task in service order whose Worker waits for it, passing over batch tasks while batches hold their whole share. */
function headOfQueue(queue: readonly TaskRow[], isWaiting: (taskId: string) => boolean, batchFull: () => boolean): TaskRow | undefined {
  let full: boolean | undefined
  return queue.find((row) => isWaiting(row.task_id) && !(row.priority_rank === PRIORITY_RANK.batch && (full ??= batchFull())))
}

/** The node a task placed again keeps off for now, or null. */
function avoidedNode(task: TaskRow, now: number): string | null {
  return task.avoid_node !== null && (task.avoid_until ?? 0) > now ? task.avoid_node : null
}
