import { DEFAULT_BATCH_AGING_MS } from '../../protocol/index.ts'
import type { EngineCall, PoolPolicy, Priority, RejectReason } from '../../protocol/index.ts'
import { grantOf, newTaskRow, retryDecision } from './admission.ts'
import type { AdmissionRefusal, AdmissionRequest, Grant, QueueStanding, RetryOf, TaskOutcome } from './grant.ts'
import { AffinityTable, placeTask } from './placement.ts'
import type { PlacementCandidate } from './placement.ts'
import type { PreemptedLine } from './slots.ts'
import type { PoolMetricsRecorder } from './pool-metrics.ts'
import type { PoolStorage } from './pool-storage.ts'
import type { TaskRow } from './task-row.ts'
import { PRIORITY_RANK, ServiceTurns } from './queue-order.ts'
import type { ServiceState } from './queue-order.ts'
import { logEvent } from '../runtime/log.ts'
import { poolRefusals } from './refusals.ts'
import type { ReplicaLoads } from './replica-loads.ts'
import { standingOf } from './standing.ts'
import { batchSlots } from './batch-share.ts'
import { mayBeInFlight, nextAverageTaskMs, nextGrant, preemptibleLine, preemptionFor } from './slots.ts'
import { graceEndsAt, strandedRefusal } from './stranded.ts'
import { moveTask } from './task-states.ts'
import { Waiters } from './waiters.ts'

/** Assumed task length before any task has finished, for Retry-After and predictions. */
const DEFAULT_TASK_MS = 5_000
/**
 * After a batch line is preempted, batch tasks leave one slot more free until no interactive task
 * has been granted for this long: interactive traffic that keeps coming then finds a free slot
 * rather than preempting a line each time.
 */
export const PREEMPTION_HOLD_MS = 2_000
/** How far into the queue one placement looks for a task whose Worker is waiting here. */
const PUMP_SCAN_TASKS = 64

/** Why a task leaves the queue without a slot: the counter it goes to and what its waiter is told. */
export interface QueueExit {
  reason: RejectReason | null
  answer: AdmissionRefusal | null
  /** The task was counted against its key's limits when it was queued, and gives its place back. */
  settleLease?: boolean
}

/** What the queue needs of its pool object: its id and policy, and the calls it makes outside storage. */
export interface TaskQueueHost {
  poolId: string
  policy(): PoolPolicy
  /** Replicas as placement sees them now (cordons, maintenance and drains applied). */
  placeable(candidates: PlacementCandidate[], now: number): PlacementCandidate[]
  /** A task on the node ended: the lifecycle's idle clock restarts. */
  touched(nodeId: string, now: number): void
  /** Gives a never-run task's place back to its key (a call to the key's object). */
  settleLease(apiKeyId: string, taskId: string): void
  /** Why no stopped replica may be started (maintenance, cordons), or null when one may. */
  cannotStart(candidates: readonly PlacementCandidate[], now: number): string | null
  /** Dispatches a granted task to its node, first stopping there the batch line it preempted. */
  dispatch(grant: Grant, generation: EngineCall, preempted: string | undefined): void
  /** Stops a preempted batch line on its node; resolves once the node has told its agent (never rejects). */
  preempt(nodeId: string, taskId: string): Promise<void>
}

/**
 * A pool's task rows moved as the decisions in `admission.ts` and `slots.ts` say: queued,
 * granted, placed again, ended; with the waiting admission calls answered and what placement and
 * the service order remember of each grant. Slots are the granted rows; only `end`, `takeBack`
 * and a preemption give one back, and each checks the row's state and attempt, so nothing is
 * freed twice.
 */
export class TaskQueue {
  readonly waiters = new Waiters()
  readonly #store: PoolStorage
  readonly #metrics: PoolMetricsRecorder
  readonly #host: TaskQueueHost
  /** Caches rebuilt empty after a restart: each replica's and key's last grant, each session's replica. */
  readonly #lastGrantedAt = new Map<string, number>()
  readonly #turns = new ServiceTurns()
  readonly affinity = new AffinityTable()
  /** Until when batch tasks leave a slot more free (see `PREEMPTION_HOLD_MS`); in memory only. */
  #holdUntil = 0
  /** Running average of task durations; saved with each usage flush. */
  averageTaskMs: number

  constructor(store: PoolStorage, metrics: PoolMetricsRecorder, host: TaskQueueHost) {
    this.#store = store
    this.#metrics = metrics
    this.#host = host
    this.averageTaskMs = store.averageTaskMs() ?? DEFAULT_TASK_MS
  }

  candidates(): PlacementCandidate[] {
    return this.#store.candidates(this.#lastGrantedAt)
  }

  placeable(now: number): PlacementCandidate[] {
    return this.#host.placeable(this.candidates(), now)
  }

  /** What `serviceOrder` needs to rank the queue now. */
  serviceState(now: number): ServiceState {
    return { now, batchAgingMs: this.#host.policy().batch_aging_ms ?? DEFAULT_BATCH_AGING_MS, lastServedAt: this.#turns.lastServedAt }
  }

  grantOf(taskId: string, nodeId: string, attempt: number): Grant {
    return grantOf({ taskId, poolId: this.#host.poolId, nodeId, attempt, policy: this.#host.policy() })
  }

  /** A new task that waits for nothing: queued and granted in one write, as its first attempt. */
  grantNew(row: ReturnType<typeof newTaskRow>, nodeId: string, affinityKey: string | undefined): Grant {
    this.#store.insertGranted({ ...row, nodeId })
    this.#noteGrant(nodeId, { apiKeyId: row.apiKeyId, batch: row.priority === 'batch' }, affinityKey, row.now)
    this.#metrics.granted({ attempt: 0, enqueuedAt: row.now, now: row.now })
    return this.grantOf(row.taskId, nodeId, 1)
  }

  /** queued → ended without a slot, the one way out of the queue: counted, its waiter answered, its key's place given back. */
  leave(row: TaskRow, { reason, answer, settleLease = false }: QueueExit): void {
    moveTask(row.task_id, row.state, 'ended')
    this.#store.remove(row.task_id)
    if (reason) this.#metrics.rejected(reason)
    if (settleLease && row.api_key_id) this.#host.settleLease(row.api_key_id, row.task_id)
    if (answer) this.waiters.settle(row.task_id, answer)
  }

  /** granted → ended: the one place a finished attempt frees its slot. */
  end(row: TaskRow, outcome: TaskOutcome, now: number): void {
    moveTask(row.task_id, row.state, 'ended')
    this.#store.remove(row.task_id)
    if (!row.node_id) return
    this.#host.touched(row.node_id, now)
    if (outcome === 'failed_before_start') this.#store.recordFailure(row.node_id)
    if (outcome !== 'completed') return
    this.#store.recordSuccess(row.node_id)
    if (row.granted_at !== null) this.averageTaskMs = nextAverageTaskMs(this.averageTaskMs, now - row.granted_at)
  }

  /** Every queued task leaves with `answer`: no replica will serve them. */
  strand(answer: AdmissionRefusal): void {
    const queued = this.#store.queuedTasks()
    if (queued.length > 0) logEvent('pool.queue_stranded', { pool: this.#host.poolId, tasks: queued.length, message: answer.error.message })
    for (const task of queued) this.leave(task, { reason: 'no_replica', answer, settleLease: true })
  }

  /** When no replica can ever serve the queue (`strandedRefusal`), its tasks end now rather than at their wait deadline. */
  strandIfUnservable(now: number): void {
    if (this.#store.queuedCount() === 0) return
    const refusal = strandedRefusal({
      poolId: this.#host.poolId,
      placeable: this.placeable(now),
      lostAt: this.#store.lostAt(),
      cannotStart: (c) => this.#host.cannotStart(c, now),
      now,
    })
    if (refusal) this.strand(refusal)
  }

  /** When the slot held for interactive traffic goes back to batch tasks waiting for it: the queue is looked at again then. */
  holdEndsAt(now: number): number | null {
    return this.#holdUntil > now && this.#store.queuedCount() > 0 ? this.#holdUntil : null
  }

  /** When a lost replica's grace ends while tasks wait: the queue is looked at again then. */
  strandCheckAt(now: number): number | null {
    return this.#store.queuedCount() === 0 ? null : graceEndsAt(this.#store.lostAt(), now)
  }

  /** Grants on the node that its NodeObject no longer streams, and whose dispatch cannot still be on its way, give their slots back. */
  reconcile(nodeId: string, streamedTaskIds: readonly string[], { startedAt, now }: { startedAt: number; now: number }): void {
    const streamed = new Set(streamedTaskIds)
    for (const task of this.#store.grantsOnNode(nodeId)) {
      if (streamed.has(task.task_id) || mayBeInFlight(task.granted_at, { startedAt, now })) continue
      logEvent('pool.slot_reconciled', { pool: this.#host.poolId, node: nodeId, task: task.task_id })
      this.#metrics.count('slots_reclaimed')
      this.end(task, 'failed', now)
    }
  }

  /** The attempt failed before its first token: back to the head of its class (see `retryDecision`), or why not. */
  takeBack(row: TaskRow | undefined, failed: RetryOf, request: AdmissionRequest, now: number): AdmissionRefusal | null {
    const decision = retryDecision(row, failed, request, { poolId: this.#host.poolId, policy: this.#host.policy(), placeable: this.placeable(now), now })
    if (decision.kind === 'unchanged') return null
    if (decision.kind === 'refused') return decision.refusal
    this.#store.recordFailure(failed.nodeId)
    if (decision.kind === 'enqueue') {
      this.#store.enqueue({ ...decision.row, attempt: failed.attempt, requeued: true, avoid: decision.avoid })
      return null
    }
    moveTask(decision.row.task_id, decision.row.state, 'queued')
    this.#store.requeue(decision.row.task_id, decision.waitDeadlineAt, decision.avoid)
    return null
  }

  /** Tasks ahead, predicted start and the engine it waits for, of a queued task; null when it is not queued. */
  standing(taskId: string, loads: ReplicaLoads, now: number): QueueStanding | null {
    const position = this.#store.positionOf(taskId, this.serviceState(now))
    if (position === null) return null
    return standingOf({ position, placeable: this.placeable(now), grants: this.#store.grantedAt(), averageTaskMs: this.averageTaskMs, loads, now })
  }

  /**
   * Where a new task starts at once, when nothing is queued ahead of it: a free slot (for a batch
   * task, within the batch share), or for an interactive task the slot of a batch line it
   * preempts (`preempted`, to be ended with `preempt` once the task is admitted).
   */
  placeNow(
    priority: Priority,
    candidates: readonly PlacementCandidate[],
    affinityKey: string | undefined,
    now: number,
  ): { nodeId: string; preempted: TaskRow | null } | null {
    if (this.#store.queuedCount() > 0 || (priority === 'batch' && this.batchShareFull(candidates, now))) return null
    const replica = placeTask(candidates, affinityKey, this.affinity)
    if (replica) return { nodeId: replica.nodeId, preempted: null }
    const preempted = priority === 'batch' ? null : preemptibleLine(this.#store.preemptibleGrants(), candidates, null)
    return preempted ? { nodeId: preempted.nodeId, preempted: preempted.line } : null
  }

  /**
   * Batch-class tasks, of every batch and key, hold the pool's whole `batch_slot_share` of its
   * ready slots; one slot fewer while interactive traffic needed a preempted slot lately.
   */
  batchShareFull(placeable: readonly PlacementCandidate[], now: number): boolean {
    const readySlots = placeable.filter((c) => c.state === 'ready').reduce((sum, c) => sum + c.slots, 0)
    const held = now < this.#holdUntil ? 1 : 0
    return this.#store.grantedBatchCount() >= batchSlots(readySlots, this.#host.policy().batch_slot_share, held)
  }

  /**
   * Grants free slots to queued tasks in service order while slots last (`nextGrant`); an
   * interactive task that finds none takes a batch line's (`preemptionFor`). Only a task whose
   * Worker waits here is granted: after a restart of the object, a queued task waits for its
   * Worker to ask again, and one whose Worker died is dropped as an orphan.
   */
  pump(now: number): void {
    for (;;) {
      const queue = this.#store.queueInServiceOrder(PUMP_SCAN_TASKS, this.serviceState(now))
      // Nothing queued is the common case after a release: placement is not worked out for nobody.
      if (queue.length === 0) return
      const placeable = this.placeable(now)
      const isWaiting = (taskId: string) => this.waiters.has(taskId)
      const batchFull = () => this.batchShareFull(placeable, now)
      const next = nextGrant({
        queue,
        isWaiting,
        placeable,
        affinityKeyOf: (taskId) => this.waiters.affinityKeyOf(taskId),
        affinity: this.affinity,
        batchFull,
        now,
      })
      if (next) {
        this.#grantQueued(next.task, next.replica.nodeId, next.affinityKey, null, now)
        continue
      }
      const preemption = preemptionFor({ queue, isWaiting, batchFull, placeable, preemptible: () => this.#store.preemptibleGrants(), now })
      if (!preemption) return
      this.preempt(preemption.preempted.line, now)
      this.#grantQueued(preemption.task, preemption.preempted.nodeId, this.waiters.affinityKeyOf(preemption.task.task_id), preemption.preempted, now)
    }
  }

  /** queued → granted on `nodeId`, answered to its waiting call (`#answer`). */
  #grantQueued(task: TaskRow, nodeId: string, affinityKey: string | undefined, preempted: PreemptedLine | null, now: number): void {
    moveTask(task.task_id, task.state, 'granted')
    this.#store.grant(task.task_id, nodeId, now)
    this.#noteGrant(nodeId, { apiKeyId: task.api_key_id, batch: task.priority_rank === PRIORITY_RANK.batch }, affinityKey, now)
    this.#metrics.granted({ attempt: task.attempt, enqueuedAt: task.enqueued_at, now })
    this.#answer(task.task_id, this.grantOf(task.task_id, nodeId, task.attempt + 1), preempted?.line.task_id)
  }

  /**
   * Answers a waiting task with its grant. The pool dispatches it when its call brought the request
   * (stopping the line it preempted in the same call); otherwise its Worker does, told only once
   * the preempted line's node has told its agent, so the agent frees the slot before the dispatch.
   */
  #answer(taskId: string, grant: Grant, preempted: string | undefined): void {
    const generation = this.waiters.generationOf(taskId)
    if (generation) {
      this.#host.dispatch(grant, generation, preempted)
      this.waiters.settle(taskId, { ok: true, grant, dispatched: true })
    } else if (preempted) void this.#host.preempt(grant.nodeId, preempted).then(() => this.waiters.settle(taskId, { ok: true, grant }))
    else this.waiters.settle(taskId, { ok: true, grant })
  }

  /** Past their deadlines: queued tasks time out, unread native tasks expire, grants past the run deadline are taken back. */
  expire(now: number): void {
    const timedOut = poolRefusals.queueTimeout(this.#host.poolId)
    for (const task of this.#store.expiredQueued(now)) this.leave(task, { reason: 'queue_timeout', answer: timedOut })
    for (const task of this.#store.unattachedExpired(now)) {
      if (this.waiters.has(task.task_id)) continue
      logEvent('pool.unattached_expired', { pool: this.#host.poolId, task: task.task_id })
      this.leave(task, { reason: 'task_expired', answer: null })
    }
    for (const task of this.#store.expiredGrants(now)) {
      logEvent('pool.grant_expired', { pool: this.#host.poolId, task: task.task_id, node: task.node_id })
      this.#metrics.count('slots_reclaimed')
      this.end(task, 'failed', now)
    }
  }

  /** granted → ended for a batch line whose slot an interactive task takes; its node is told to stop it, and its batch runs it again. */
  preempt(line: TaskRow, now: number): void {
    this.#holdUntil = now + PREEMPTION_HOLD_MS
    moveTask(line.task_id, line.state, 'ended')
    this.#store.remove(line.task_id)
    this.#metrics.count('tasks_preempted')
    logEvent('pool.task_preempted', { pool: this.#host.poolId, task: line.task_id, node: line.node_id, attempt: line.attempt })
  }

  /** What placement and the service order remember of a grant: the replica's turn, the key's turn, the session's replica, the hold. */
  #noteGrant(nodeId: string, { apiKeyId, batch }: { apiKeyId: string | null; batch: boolean }, affinityKey: string | undefined, now: number): void {
    if (!batch && now < this.#holdUntil) this.#holdUntil = now + PREEMPTION_HOLD_MS
    this.#lastGrantedAt.set(nodeId, now)
    this.#turns.served(apiKeyId, now)
    if (affinityKey !== undefined) this.affinity.served(affinityKey, nodeId)
  }
}
