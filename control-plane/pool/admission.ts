import type { PoolPolicy } from '../../protocol/index.ts'
import type { AdmissionRefusal, AdmissionRequest, Grant, RetryOf } from './grant.ts'
import { replicaId } from '../registry/replicas.ts'
import { availability, servesSoon } from './placement.ts'
import type { PlacementCandidate } from './placement.ts'
import type { Avoidance, TaskRow } from './task-row.ts'
import { retryAfterSeconds } from './queue-order.ts'
import { poolRefusals } from './refusals.ts'

/** A placed-again task keeps off the node it just failed on this long (that node may not have said so yet). */
export const FAILED_NODE_BACKOFF_MS = 1_000

/** What admission knows of the pool when a new task comes. */
export interface PoolView {
  poolId: string
  policy: PoolPolicy
  /** Replicas as placement sees them: cordons, maintenance and pending drains applied. */
  candidates: readonly PlacementCandidate[]
  queued: number
  averageTaskMs: number
  /** Why no stopped replica may be started (maintenance, cordons), or null when one may. */
  cannotStart: (candidates: readonly PlacementCandidate[]) => string | null
}

/**
 * Why a new task cannot be queued, or null when it can. `placeableNow`: a free slot takes it at
 * once, so it never waits and the queue's capacity does not apply to it.
 */
export function newTaskRefusal(pool: PoolView, placeableNow: boolean): AdmissionRefusal | null {
  const { poolId, policy, candidates, queued } = pool
  if (candidates.length === 0) return poolRefusals.noReplicaRegistered(poolId)
  const serving = availability(candidates)
  if (serving === 'none') return poolRefusals.everyReplicaDown(poolId)
  // The lifecycle starts a stopped replica once the task is queued, unless none may start.
  const cannotStart = serving === 'needs_preload' ? pool.cannotStart(candidates) : null
  if (cannotStart) return poolRefusals.cannotStart(cannotStart)
  if (queued < policy.queue_capacity || placeableNow) return null
  const readySlots = candidates.filter((c) => c.state === 'ready').reduce((n, c) => n + c.slots, 0)
  return poolRefusals.queueFull(poolId, policy.queue_capacity, retryAfterSeconds({ queued, readySlots, averageTaskMs: pool.averageTaskMs }))
}

/** A new task's row: its deadlines are the pool's unless the request names its own. */
export function newTaskRow(request: AdmissionRequest, policy: PoolPolicy, now: number) {
  return {
    taskId: request.taskId,
    apiKeyId: request.apiKeyId,
    priority: request.priority ?? policy.default_priority,
    now,
    waitDeadlineAt: now + (request.maxWaitMs ?? policy.queue_timeout_ms),
    runDeadlineMs: request.runDeadlineMs ?? policy.run_timeout_ms,
    preemptible: request.preemptible === true,
  }
}

/** What becomes of an attempt that failed before its first token and asks to be placed again. */
export type RetryDecision =
  /** A repeated or stale call: the row moved on already. */
  | { kind: 'unchanged' }
  | { kind: 'refused'; refusal: AdmissionRefusal }
  /** granted → queued at the head of its class. */
  | { kind: 'requeue'; row: TaskRow; waitDeadlineAt: number; avoid: Avoidance }
  /** Its row was already taken back (a reconciled slot): queued afresh at the head of its class. */
  | { kind: 'enqueue'; row: ReturnType<typeof newTaskRow>; avoid: Avoidance }

export function retryDecision(
  row: TaskRow | undefined,
  failed: RetryOf,
  request: AdmissionRequest,
  { poolId, policy, placeable, now }: { poolId: string; policy: PoolPolicy; placeable: readonly PlacementCandidate[]; now: number },
): RetryDecision {
  if (row && (row.state !== 'granted' || row.attempt !== failed.attempt)) return { kind: 'unchanged' }
  if (failed.elsewhereOnly && !placeable.some((c) => c.nodeId !== failed.nodeId && servesSoon(c))) {
    return { kind: 'refused', refusal: poolRefusals.noReplicaElsewhere(poolId, failed.nodeId) }
  }
  const fresh = newTaskRow({ ...request, priority: request.priority ?? 'interactive' }, policy, now)
  // An engine that is up but silent is avoided for good; any other failure for a moment.
  const avoid = { nodeId: failed.nodeId, until: failed.elsewhereOnly ? fresh.waitDeadlineAt : now + FAILED_NODE_BACKOFF_MS }
  if (!row) return { kind: 'enqueue', row: fresh, avoid }
  return { kind: 'requeue', row, waitDeadlineAt: fresh.waitDeadlineAt, avoid }
}

/** The grant one attempt of a task gets, with the pool's deadlines for it. */
export function grantOf({
  taskId,
  poolId,
  nodeId,
  attempt,
  policy,
}: {
  taskId: string
  poolId: string
  nodeId: string
  attempt: number
  policy: PoolPolicy
}): Grant {
  return {
    taskId,
    poolId,
    nodeId,
    replicaId: replicaId(nodeId, poolId),
    attempt,
    firstTokenTimeoutMs: policy.first_token_timeout_ms,
    idleTimeoutMs: policy.idle_timeout_ms,
    runTimeoutMs: policy.run_timeout_ms,
  }
}
