import { DurableObject } from 'cloudflare:workers'
import type { PoolMetrics, PoolPolicy, ReplicaReport, ReplicaState } from '../protocol/index.ts'
import { guardEntryPoint } from './entry-point-guard.ts'
import type { Bindings } from './env.ts'
import { registryFor } from './env.ts'
import { logError, logEvent } from './log.ts'
import { availability, pickReplica } from './pool/placement.ts'
import { PoolMetricsRecorder } from './pool/pool-metrics.ts'
import { PoolStorage, USAGE_FLUSH_INTERVAL_MS } from './pool/pool-storage.ts'
import type { TaskRow } from './pool/pool-storage.ts'
import { retryAfterSeconds } from './pool/queue-order.ts'
import { findPool, policyOf } from './registry/pools.ts'
import { replicaId } from './registry/replicas.ts'
import { recordUsage } from './registry/usage.ts'
import type { AdmissionRequest, AdmissionResult, AttemptReport, Grant, TaskOutcome } from './task/grant.ts'
import { assertTaskTransition } from './task/task-states.ts'
import type { TaskPhase } from './task/task-states.ts'

/** Assumed task length before any task has finished, for Retry-After. */
const DEFAULT_TASK_MS = 5_000
/** A grant its node no longer streams is taken back only after this grace (its dispatch may be in flight). */
export const UNSTREAMED_GRANT_GRACE_MS = 2_000
/** Most buffered usage rows written to the registry in one batch. */
const USAGE_FLUSH_BATCH_ROWS = 500

const NO_REPORT: AttemptReport = { usage: null, ttftMs: null }

type AdmissionError = Extract<AdmissionResult, { ok: false }>['error']

function refused(code: AdmissionError['code'], message: string, retryAfter?: number): AdmissionResult {
  return { ok: false, error: { code, message, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) } }
}

export interface PoolStatus {
  queueDepth: number
  replicas: Array<{ nodeId: string; state: ReplicaState; slots: number; busy: number }>
}

/**
 * Live state of one pool, named by its pool id: its policy, the persisted queue, the replica
 * table, admission, placement, slot accounting and the usage of finished tasks. It sees task
 * starts and ends, never tokens. Once it knows its policy, admission reads nothing from the
 * registry; usage reaches the registry in batches.
 *
 * Slots: a task holds one while its row is `granted`. Only `#end` and `#requeue` take it back, and
 * both check the attempt they are told about, so a late or repeated release frees nothing twice.
 */
export class PoolObject extends DurableObject<Bindings> {
  readonly #store: PoolStorage
  readonly #metrics: PoolMetricsRecorder
  /** Admission calls waiting for a slot; rebuilt by retried `admit` calls after a restart. */
  readonly #waiters = new Map<string, (result: AdmissionResult) => void>()

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new PoolStorage(ctx.storage.sql)
    this.#metrics = new PoolMetricsRecorder(ctx.storage.sql)
  }

  get #poolId(): string {
    return this.ctx.id.name ?? ''
  }

  /**
   * Admits a task: answers with a grant once a slot is free, or refuses with `queue_full`,
   * `no_replica` or `queue_timeout`. Calling it again with the same task id (after a restart of
   * this object) rejoins the queue where the task stood. With `retryOf`, the failed attempt
   * gives its slot back and the task goes to the head of its class.
   */
  admit(request: AdmissionRequest): Promise<AdmissionResult> {
    return this.#guard('admit', async () => {
      const now = Date.now()
      const existing = this.#store.task(request.taskId)
      if (request.retryOf) {
        this.#metrics.count('task_failovers')
        this.#takeBack(existing, request.retryOf, request, now)
      } else if (!existing) {
        const policy = await this.#policy()
        if (!policy.ok) return this.#counted(policy.refusal)
        const refusal = this.#refusal(policy.policy)
        if (refusal) return this.#counted(refusal)
        this.#metrics.count('tasks_admitted')
        this.#store.enqueue({ ...this.#queued(request, now), priority: request.priority ?? policy.policy.default_priority, attempt: 0, requeued: false })
      }
      // A call repeated after a restart of this object collects the grant it missed.
      const row = this.#store.task(request.taskId)
      if (row?.state === 'granted') return { ok: true, grant: this.#grantOf(row.task_id, row.node_id ?? '', row.attempt) }
      const granted = new Promise<AdmissionResult>((resolve) => this.#waiters.set(request.taskId, resolve))
      this.#pump(now)
      await this.#armAlarm()
      return granted
    })
  }

  /**
   * The attempt ended (end, error, cancel): its slot is free, and the usage the engine reported
   * is buffered for the registry. Stale or repeated calls change nothing.
   */
  release(taskId: string, attempt: number, outcome: TaskOutcome, report: AttemptReport = NO_REPORT): Promise<void> {
    return this.#guard('release', async () => {
      const now = Date.now()
      const row = this.#store.task(taskId)
      if (row?.state !== 'granted' || row.attempt !== attempt) return
      if (report.usage) this.#store.bufferUsage({ taskId, apiKeyId: row.api_key_id, usage: report.usage, endedAt: now })
      this.#metrics.ended({ outcome, report, grantedAt: row.granted_at, now })
      this.#end(row, outcome, now)
      this.#pump(now)
      await this.#armAlarm()
    })
  }

  /**
   * A node reported its replica of this pool. Grants on that node that its NodeObject no longer
   * streams give their slots back, so busy counts follow what the node runs.
   */
  syncReplica(nodeId: string, report: ReplicaReport, streamedTaskIds: readonly string[]): Promise<void> {
    return this.#guard('syncReplica', async () => {
      const now = Date.now()
      // Learn the policy before the first request needs it.
      if (!this.#store.policy()) this.ctx.waitUntil(this.#policy())
      this.#store.upsertReplica(nodeId, report, now)
      const streamed = new Set(streamedTaskIds)
      for (const task of this.#store.grantsOnNode(nodeId)) {
        if (streamed.has(task.task_id) || (task.granted_at ?? 0) + UNSTREAMED_GRANT_GRACE_MS >= now) continue
        logEvent('pool.slot_reconciled', { pool: this.#poolId, node: nodeId, task: task.task_id })
        this.#metrics.count('slots_reclaimed')
        this.#end(task, 'failed', now)
      }
      this.#pump(now)
      await this.#armAlarm()
    })
  }

  /**
   * The node is gone: its replica takes no task from now on. Its tasks keep their slots until
   * their Workers, told `node_lost`, place them again or give up; those slots no longer count.
   */
  replicaLost(nodeId: string): Promise<void> {
    return this.#guard('replicaLost', async () => {
      this.#store.setReplicaState(nodeId, 'lost', Date.now())
    })
  }

  /** An operator changed the policy in the registry; admission follows it from now on. */
  setPolicy(policy: PoolPolicy): Promise<void> {
    return this.#guard('setPolicy', () => this.#store.setPolicy(policy))
  }

  /** Queue depth and per-replica slot use, for the admin API and metrics. */
  status(): Promise<PoolStatus> {
    return this.#guard('status', () => ({
      queueDepth: this.#store.queuedCount(),
      replicas: this.#store.candidates().map((c) => ({ nodeId: c.nodeId, state: c.state, slots: c.slots, busy: c.busy })),
    }))
  }

  /** Counters, histograms and gauges of this pool, for `/metrics`. */
  metrics(): Promise<PoolMetrics> {
    return this.#guard('metrics', () => this.#metrics.snapshot(this.#poolId, { queueDepth: this.#store.queuedCount(), replicas: this.#store.candidates() }))
  }

  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      const now = Date.now()
      for (const task of this.#store.expiredQueued(now)) {
        this.#move(task, 'ended')
        this.#store.remove(task.task_id)
        this.#metrics.rejected('queue_timeout')
        this.#settle(task.task_id, refused('queue_timeout', `no slot became free in pool "${this.#poolId}" before the task's wait deadline`))
      }
      for (const task of this.#store.expiredGrants(now)) {
        logEvent('pool.grant_expired', { pool: this.#poolId, task: task.task_id, node: task.node_id })
        this.#metrics.count('slots_reclaimed')
        this.#end(task, 'failed', now)
      }
      await this.#flushUsage(now)
      this.#pump(now)
      await this.#armAlarm()
    })
  }

  /** The pool's policy, from storage, else (once) from the registry; a pool the registry lacks does not exist. */
  async #policy(): Promise<{ ok: true; policy: PoolPolicy } | { ok: false; refusal: AdmissionResult }> {
    const stored = this.#store.policy()
    if (stored) return { ok: true, policy: stored }
    const poolId = this.#poolId
    let row: Awaited<ReturnType<typeof findPool>>
    try {
      row = await findPool(registryFor(this.env), poolId)
    } catch (error) {
      logError('pool.registry_read_failed', { pool: poolId, error: String(error) })
      return { ok: false, refusal: refused('registry_unavailable', `the registry cannot be reached to look up pool "${poolId}"; try again shortly`) }
    }
    if (!row) return { ok: false, refusal: refused('model_not_found', `the model "${poolId}" does not exist; GET /v1/models lists the served ones`) }
    const policy = policyOf(row)
    this.#store.setPolicy(policy)
    return { ok: true, policy }
  }

  /** Writes buffered usage to the registry in one batch; on failure it stays buffered and is tried again. */
  async #flushUsage(now: number): Promise<void> {
    const due = this.#store.usageFlushAt()
    if (due === null || due > now) return
    const rows = this.#store.bufferedUsage(USAGE_FLUSH_BATCH_ROWS)
    try {
      await recordUsage(registryFor(this.env), { poolId: this.#poolId, rows })
      this.#store.usageFlushed(rows.map((r) => r.task_id), now)
    } catch (error) {
      logError('pool.usage_flush_failed', { pool: this.#poolId, rows: rows.length, error: String(error) })
      this.#store.postponeUsageFlush(now + USAGE_FLUSH_INTERVAL_MS)
    }
  }

  /** Why a new task cannot be queued, or null when it can. */
  #refusal(policy: PoolPolicy): AdmissionResult | null {
    const poolId = this.#poolId
    const candidates = this.#store.candidates()
    if (candidates.length === 0) {
      return refused('no_replica', `no replica is registered for pool "${poolId}": start an agent whose config serves it`)
    }
    const serving = availability(candidates)
    if (serving === 'none') return refused('no_replica', `every replica of pool "${poolId}" is failed or lost; see GET /v2/pools/${poolId}`)
    if (serving === 'needs_preload') this.#preloadOnDemand(candidates.filter((c) => c.state === 'stopped').map((c) => c.nodeId))
    const queued = this.#store.queuedCount()
    // An empty queue with a free slot takes the task whatever the capacity: it never waits.
    const placeableNow = queued === 0 && pickReplica(candidates) !== null
    if (queued < policy.queue_capacity || placeableNow) return null
    const readySlots = candidates.filter((c) => c.state === 'ready').reduce((n, c) => n + c.slots, 0)
    return refused(
      'queue_full',
      `pool "${poolId}" queue is full (${policy.queue_capacity} waiting)`,
      retryAfterSeconds({ queued, readySlots, averageTaskMs: this.#store.averageTaskMs(DEFAULT_TASK_MS) }),
    )
  }

  /** Counts a refusal by its reason. */
  #counted(refusal: AdmissionResult): AdmissionResult {
    if (!refusal.ok) this.#metrics.rejected(refusal.error.code)
    return refusal
  }

  #queued(request: AdmissionRequest, now: number) {
    return { taskId: request.taskId, apiKeyId: request.apiKeyId, now, waitDeadlineAt: now + request.maxWaitMs, runDeadlineMs: request.runDeadlineMs }
  }

  #move(row: TaskRow, to: TaskPhase): void {
    assertTaskTransition(row.task_id, row.state, to)
  }

  /** granted → ended: the one place a finished attempt frees its slot. */
  #end(row: TaskRow, outcome: TaskOutcome, now: number): void {
    this.#move(row, 'ended')
    this.#store.remove(row.task_id)
    if (!row.node_id) return
    if (outcome === 'failed_before_start') this.#store.recordFailure(row.node_id)
    if (outcome === 'completed') {
      this.#store.recordSuccess(row.node_id)
      if (row.granted_at !== null) this.#store.recordTaskDuration(now - row.granted_at, DEFAULT_TASK_MS)
    }
  }

  /**
   * The attempt failed before its first token: granted → queued at the head of its class, or
   * queued afresh there when its row was already taken back. A repeated call changes nothing.
   */
  #takeBack(row: TaskRow | undefined, failed: { attempt: number; nodeId: string }, request: AdmissionRequest, now: number): void {
    if (row && (row.state !== 'granted' || row.attempt !== failed.attempt)) return
    this.#store.recordFailure(failed.nodeId)
    if (!row) {
      this.#store.enqueue({ ...this.#queued(request, now), priority: request.priority ?? 'interactive', attempt: failed.attempt, requeued: true })
      return
    }
    this.#move(row, 'queued')
    this.#store.requeue(row.task_id, now + request.maxWaitMs)
  }

  /** Grants free slots to queued tasks, head of the queue first, while slots last. */
  #pump(now: number): void {
    for (;;) {
      const head = this.#store.headOfQueue()
      if (!head) return
      const replica = pickReplica(this.#store.candidates())
      if (!replica) return
      this.#move(head, 'granted')
      // A task whose admit call was lost in a restart is granted anyway: the retried call
      // collects the grant, and one nobody collects is taken back at its run deadline.
      this.#store.grant(head.task_id, replica.nodeId, now)
      this.#metrics.granted({ attempt: head.attempt, enqueuedAt: head.enqueued_at, now })
      this.#settle(head.task_id, { ok: true, grant: this.#grantOf(head.task_id, replica.nodeId, head.attempt + 1) })
    }
  }

  #settle(taskId: string, result: AdmissionResult): void {
    const waiter = this.#waiters.get(taskId)
    this.#waiters.delete(taskId)
    waiter?.(result)
  }

  #grantOf(taskId: string, nodeId: string, attempt: number): Grant {
    const poolId = this.#poolId
    return { taskId, poolId, nodeId, replicaId: replicaId(nodeId, poolId), attempt }
  }

  #preloadOnDemand(nodeIds: string[]): void {
    const poolId = this.#poolId
    const nodeId = nodeIds[0]
    if (!nodeId) return
    logEvent('pool.preload_on_demand', { pool: poolId, node: nodeId })
    this.ctx.waitUntil(this.env.NODES.getByName(nodeId).command({ command: 'preload', pool: poolId }).then(() => undefined, () => undefined))
  }

  async #armAlarm(): Promise<void> {
    const next = this.#store.nextDeadline()
    if (next === null) await this.ctx.storage.deleteAlarm()
    else await this.ctx.storage.setAlarm(next)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'PoolObject', name: this.ctx.id.name, method }, work)
  }
}
