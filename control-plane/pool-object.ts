import { DurableObject } from 'cloudflare:workers'
import { DEFAULT_BATCH_AGING_MS, DEFAULT_POOL_POLICY, PoolPolicy } from '../protocol/index.ts'
import type { PoolMetrics, PoolPolicyInput, ReplicaReport, ReplicaState } from '../protocol/index.ts'
import { countStorageWrite } from './cost-counts.ts'
import { guardEntryPoint } from './entry-point-guard.ts'
import type { Bindings } from './env.ts'
import { registryFor } from './env.ts'
import { settleKeyLease, takeKeyLease } from './limits/key-lease.ts'
import { logError, logEvent } from './log.ts'
import { AffinityTable, availability, placeTask, servesSoon } from './pool/placement.ts'
import type { PlacementCandidate } from './pool/placement.ts'
import { PoolLifecycle } from './pool/pool-lifecycle.ts'
import type { LifecycleStatus, ReloadAnswer } from './pool/pool-lifecycle.ts'
import { PoolMetricsRecorder } from './pool/pool-metrics.ts'
import { PoolStorage, USAGE_FLUSH_INTERVAL_MS } from './pool/pool-storage.ts'
import type { TaskRow } from './pool/pool-storage.ts'
import { ServiceTurns, retryAfterSeconds } from './pool/queue-order.ts'
import type { ServiceState } from './pool/queue-order.ts'
import { ReplicaLoads } from './pool/replica-loads.ts'
import { busySlotFreeInMs, predictStartMs } from './pool/start-prediction.ts'
import { findPool, policyOf } from './registry/pools.ts'
import { replicaId } from './registry/replicas.ts'
import { recordUsage } from './registry/usage.ts'
import type { AdmissionRequest, AdmissionResult, AttemptReport, EnqueueResult, Grant, QueueStanding, RetryOf, TaskOutcome } from './task/grant.ts'
import { assertTaskTransition } from './task/task-states.ts'
import type { TaskPhase } from './task/task-states.ts'

/** Assumed task length before any task has finished, for Retry-After. */
const DEFAULT_TASK_MS = 5_000
/** A grant its node no longer streams is taken back only after this grace (its dispatch may be in flight). */
export const UNSTREAMED_GRANT_GRACE_MS = 2_000
/** A task placed again after failing on a node keeps off that node this long. */
export const FAILED_NODE_BACKOFF_MS = 1_000
/** After a restart of the object, how long a queued task's Worker has to ask for it again. */
export const REJOIN_GRACE_MS = 2_000
/** How far into the queue one placement looks for a task whose Worker is waiting here. */
const PUMP_SCAN_TASKS = 64
/** Most buffered usage rows written to the registry in one batch. */
const USAGE_FLUSH_BATCH_ROWS = 500

const NO_REPORT: AttemptReport = { usage: null, ttftMs: null }

type Refused = Extract<AdmissionResult, { ok: false }>

function refused(code: Refused['error']['code'], message: string, retryAfter?: number): Refused {
  return { ok: false, error: { code, message, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) } }
}

export interface PoolStatus {
  queueDepth: number
  replicas: Array<{ nodeId: string; state: ReplicaState; slots: number; busy: number }>
  lifecycle: LifecycleStatus
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
  readonly #lifecycle: PoolLifecycle
  /** Admission calls waiting for a slot; rebuilt by retried `admit` calls after a restart. */
  readonly #waiters = new Map<string, (result: AdmissionResult) => void>()
  /** When the alarm is set to fire, null when none is; `undefined` until read after a restart. */
  #alarmAt: number | null | undefined = undefined
  /** When each replica was last granted a task, so equal replicas take turns; a cache, rebuilt empty. */
  readonly #lastGrantedAt = new Map<string, number>()
  /** When each key was last granted a slot, so keys take turns; a cache, rebuilt empty. */
  readonly #turns = new ServiceTurns()
  /** Which replica each session was placed on last; a cache, rebuilt empty. */
  readonly #affinity = new AffinityTable()
  /** The affinity key of each waiting task, beside its waiter. */
  readonly #affinityKeys = new Map<string, string>()
  /** Running average of task durations, for Retry-After; saved with each usage flush. */
  #averageTaskMs: number
  /** The stored policy, read once per instance. */
  #knownPolicy: PoolPolicy | null = null
  /** When this instance started: grants older than that cannot be in flight. */
  readonly #startedAt = Date.now()
  /** Whether the tasks queued before this instance started were looked at (or there were none). */
  #orphansChecked = false
  /** How long engines take to start, for the predicted start of tasks that wait for one. */
  readonly #replicaLoads = new ReplicaLoads()

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new PoolStorage(ctx.storage.sql)
    this.#averageTaskMs = this.#store.averageTaskMs() ?? DEFAULT_TASK_MS
    this.#metrics = new PoolMetricsRecorder(ctx.storage.sql)
    this.#lifecycle = new PoolLifecycle(ctx.storage.sql, {
      poolId: this.#poolId,
      send: (nodeId, command, deadlineMs) => {
        if (command === 'preload') this.#replicaLoads.startedOnDemand(nodeId, Date.now())
        return this.env.NODES.getByName(nodeId).command({ command, pool: this.#poolId, deadlineMs })
      },
      background: (promise) => this.ctx.waitUntil(promise),
    })
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
      let rateLimitHeaders: Record<string, string> | undefined
      const existing = this.#store.task(request.taskId)
      if (request.retryOf) {
        this.#metrics.count('task_failovers')
        const refusal = this.#takeBack(existing, request.retryOf, request, now)
        if (refusal) return this.#counted(refusal)
      } else if (!existing) {
        const admitted = await this.#admitNew(request, now, { grantNow: true })
        if (!admitted.ok) return this.#counted(admitted.refusal)
        rateLimitHeaders = admitted.rateLimitHeaders
        if (admitted.grant) return { ok: true, grant: admitted.grant, rateLimitHeaders }
      } else if (existing.attach_by !== null) {
        // A task enqueued ahead of its reader: from now on someone waits for it.
        this.#store.markAttached(request.taskId)
      }
      // A call repeated after a restart of this object collects the grant it missed.
      const row = this.#store.task(request.taskId)
      if (row?.state === 'granted') return { ok: true, grant: this.#grantOf(row.task_id, row.node_id ?? '', row.attempt) }
      const granted = new Promise<AdmissionResult>((resolve) => this.#waiters.set(request.taskId, resolve))
      if (request.affinityKey !== undefined) this.#affinityKeys.set(request.taskId, request.affinityKey)
      this.#pump(now)
      this.#tickLifecycle(now)
      await this.#armAlarm()
      const result = await granted
      return result.ok ? { ...result, rateLimitHeaders } : result
    })
  }

  /**
   * Queues a task that nobody waits for yet (a native task, before a client reads its events)
   * and answers at once where it stands, or why it is refused. It is granted only once an
   * `admit` for it comes, and dropped if none comes within `attachWithinMs`.
   */
  enqueue(request: AdmissionRequest): Promise<EnqueueResult> {
    return this.#guard('enqueue', async () => {
      const now = Date.now()
      let rateLimitHeaders: Record<string, string> | undefined
      if (!this.#store.task(request.taskId)) {
        const admitted = await this.#admitNew(request, now, { grantNow: false })
        if (!admitted.ok) return this.#counted(admitted.refusal)
        rateLimitHeaders = admitted.rateLimitHeaders
        // An engine starts for it now, so it may be ready by the time a reader comes.
        this.#tickLifecycle(now)
        await this.#armAlarm()
      }
      const standing = this.#standing(request.taskId, now)
      if (!standing) return refused('task_expired', `task ${request.taskId} is no longer queued in pool "${this.#poolId}"`)
      return { ok: true, standing, ...(rateLimitHeaders ? { rateLimitHeaders } : {}) }
    })
  }

  /** Where a queued task stands now; null once it has left the queue (granted, ended or dropped). */
  standing(taskId: string): Promise<QueueStanding | null> {
    return this.#guard('standing', () => this.#standing(taskId, Date.now()))
  }

  /**
   * Takes a queued task out of the queue; its waiting `admit` answers `cancelled`. False when the
   * task is not queued (granted already: its runner stops it on its node).
   */
  cancelQueued(taskId: string): Promise<boolean> {
    return this.#guard('cancelQueued', async () => {
      const row = this.#store.task(taskId)
      if (row?.state !== 'queued') return false
      this.#move(row, 'ended')
      this.#store.remove(taskId)
      this.#metrics.rejected('cancelled')
      this.#settle(taskId, refused('cancelled', `task ${taskId} was cancelled while queued`))
      return true
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
      this.#tickLifecycle(now)
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
      this.#knownPolicy ??= this.#store.policy()
      if (!this.#knownPolicy) this.ctx.waitUntil(this.#policy())
      this.#replicaLoads.observe(nodeId, report.state, now, report.download ?? null)
      this.#store.upsertReplica(nodeId, report, now)
      const streamed = new Set(streamedTaskIds)
      for (const task of this.#store.grantsOnNode(nodeId)) {
        if (streamed.has(task.task_id) || this.#mayBeInFlight(task, now)) continue
        logEvent('pool.slot_reconciled', { pool: this.#poolId, node: nodeId, task: task.task_id })
        this.#metrics.count('slots_reclaimed')
        this.#end(task, 'failed', now)
      }
      this.#pump(now)
      this.#tickLifecycle(now)
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
  setPolicy(input: PoolPolicyInput): Promise<void> {
    return this.#guard('setPolicy', async () => {
      const policy = PoolPolicy.parse(input)
      this.#store.setPolicy(policy)
      this.#knownPolicy = policy
      this.#tickLifecycle(Date.now())
      await this.#armAlarm()
    })
  }

  /** A maintenance drain (on) stays until a preload (off): no replica of the pool is started meanwhile. */
  setMaintenance(on: boolean): Promise<void> {
    return this.#guard('setMaintenance', () => {
      this.#lifecycle.setMaintenance(on, Date.now())
      if (!on) return
      // Tasks waiting for a slot would only wait out their deadline.
      const message = this.#lifecycle.maintenanceRefusal()
      for (const task of this.#store.queuedTasks()) {
        this.#move(task, 'ended')
        this.#store.remove(task.task_id)
        this.#metrics.rejected('no_replica')
        // The task was counted against its key's limits when it was queued.
        if (task.api_key_id) this.ctx.waitUntil(settleKeyLease(this.env, { apiKeyId: task.api_key_id, taskId: task.task_id, usage: null }))
        this.#settle(task.task_id, refused('no_replica', message))
      }
    })
  }

  /** The node is cordoned (on) or uncordoned: its replica takes no new task and is never started meanwhile. */
  cordon(nodeId: string, on: boolean): Promise<void> {
    return this.#guard('cordon', async () => {
      const now = Date.now()
      this.#lifecycle.setCordon(nodeId, on, now)
      this.#tickLifecycle(now)
      await this.#armAlarm()
    })
  }

  /** Reloads the pool's replicas, one at a time when two or more are ready; answers the commands sent now. */
  reload({ deadlineMs }: { deadlineMs?: number }): Promise<ReloadAnswer> {
    return this.#guard('reload', async () => {
      const now = Date.now()
      const answer = await this.#lifecycle.reload(this.#candidates(), { now, ...(deadlineMs !== undefined ? { deadlineMs } : {}) })
      this.#tickLifecycle(now)
      await this.#armAlarm()
      return answer
    })
  }

  /** Queue depth and per-replica slot use, for the admin API and metrics. */
  status(): Promise<PoolStatus> {
    return this.#guard('status', () => ({
      queueDepth: this.#store.queuedCount(),
      replicas: this.#candidates().map((c) => ({ nodeId: c.nodeId, state: c.state, slots: c.slots, busy: c.busy })),
      lifecycle: this.#lifecycle.status(),
    }))
  }

  /** Counters, histograms and gauges of this pool, for `/metrics`. */
  metrics(): Promise<PoolMetrics> {
    return this.#guard('metrics', () => this.#metrics.snapshot(this.#poolId, { queueDepth: this.#store.queuedCount(), replicas: this.#candidates() }))
  }

  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      // A fired alarm is gone; the next one must be set whatever this instance remembered.
      this.#alarmAt = null
      const now = Date.now()
      for (const task of this.#store.expiredQueued(now)) {
        this.#move(task, 'ended')
        this.#store.remove(task.task_id)
        this.#metrics.rejected('queue_timeout')
        this.#settle(task.task_id, refused('queue_timeout', `no slot became free in pool "${this.#poolId}" before the task's wait deadline`))
      }
      for (const task of this.#store.unattachedExpired(now)) {
        if (this.#waiters.has(task.task_id)) continue
        logEvent('pool.unattached_expired', { pool: this.#poolId, task: task.task_id })
        this.#move(task, 'ended')
        this.#store.remove(task.task_id)
        this.#metrics.rejected('task_expired')
      }
      for (const task of this.#store.expiredGrants(now)) {
        logEvent('pool.grant_expired', { pool: this.#poolId, task: task.task_id, node: task.node_id })
        this.#metrics.count('slots_reclaimed')
        this.#end(task, 'failed', now)
      }
      this.#dropOrphans(now)
      this.#metrics.flush()
      await this.#flushUsage(now)
      this.#pump(now)
      this.#tickLifecycle(now)
      await this.#armAlarm()
    })
  }

  /** The pool's policy, from storage, else (once) from the registry; a pool the registry lacks does not exist. */
  async #policy(): Promise<{ ok: true; policy: PoolPolicy } | { ok: false; refusal: Refused }> {
    this.#knownPolicy ??= this.#store.policy()
    if (this.#knownPolicy) return { ok: true, policy: this.#knownPolicy }
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
    this.#knownPolicy = policy
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
      this.#store.saveAverageTaskMs(this.#averageTaskMs)
    } catch (error) {
      logError('pool.usage_flush_failed', { pool: this.#poolId, rows: rows.length, error: String(error) })
      this.#store.postponeUsageFlush(now + USAGE_FLUSH_INTERVAL_MS)
    }
  }

  #candidates() {
    return this.#store.candidates(this.#lastGrantedAt)
  }

  /** The candidates as placement and admission see them: cordons, maintenance and pending drains applied. */
  #placeable(now: number) {
    return this.#lifecycle.placeable(this.#candidates(), now)
  }

  /** Starts or stops replicas as the pool's lifecycle policy says (see pool/lifecycle.ts). */
  #tickLifecycle(now: number): void {
    const policy = this.#knownPolicy ?? this.#store.policy()
    if (!policy) return
    this.#lifecycle.tick({ policy, candidates: this.#candidates(), queued: this.#store.queuedCount(), averageTaskMs: this.#averageTaskMs, now })
  }

  /**
   * Whether a grant's dispatch may still be on its way to its node. Only a grant this instance
   * made recently can be: one from before a restart of this object belongs to a Worker request
   * that already reached its node, or died with the restart (a ghost).
   */
  #mayBeInFlight(task: TaskRow, now: number): boolean {
    const grantedAt = task.granted_at ?? 0
    return grantedAt >= this.#startedAt && grantedAt + UNSTREAMED_GRANT_GRACE_MS >= now
  }

  /**
   * A task the pool has not seen: refused, granted at once (when `grantNow`, nothing waits ahead
   * of it and a slot is free: queued and granted in one write), or queued.
   */
  async #admitNew(
    request: AdmissionRequest,
    now: number,
    { grantNow }: { grantNow: boolean },
  ): Promise<{ ok: true; grant: Grant | null; rateLimitHeaders: Record<string, string> | undefined } | { ok: false; refusal: Refused }> {
    const policy = await this.#policy()
    if (!policy.ok) return { ok: false, refusal: policy.refusal }
    const { waitDeadlineAt, runDeadlineMs } = this.#queued(request, policy.policy, now)
    const lease = await takeKeyLease(this.env, request, { poolDefaults: policy.policy.key_limits, holdMs: waitDeadlineAt - now + runDeadlineMs })
    if (!lease.ok) return { ok: false, refusal: lease.refusal }
    const candidates = this.#placeable(now)
    const queued = this.#store.queuedCount()
    const replica = grantNow && queued === 0 ? placeTask(candidates, request.affinityKey, this.#affinity) : null
    const refusal = this.#refusal(policy.policy, { candidates, queued, placeableNow: replica !== null })
    if (refusal) {
      if (lease.counted && request.apiKeyId) this.ctx.waitUntil(settleKeyLease(this.env, { apiKeyId: request.apiKeyId, taskId: request.taskId, usage: null }))
      return { ok: false, refusal }
    }
    this.#metrics.count('tasks_admitted')
    const task = { ...this.#queued(request, policy.policy, now), priority: request.priority ?? policy.policy.default_priority }
    if (replica) {
      this.#store.insertGranted({ ...task, nodeId: replica.nodeId })
      this.#noteGrant(replica.nodeId, request.apiKeyId, request.affinityKey, now)
      this.#metrics.granted({ attempt: 0, enqueuedAt: now, now })
      await this.#armAlarm()
      return { ok: true, grant: this.#grantOf(request.taskId, replica.nodeId, 1), rateLimitHeaders: lease.headers }
    }
    const attachBy = request.attachWithinMs === undefined ? undefined : now + request.attachWithinMs
    this.#store.enqueue({ ...task, attempt: 0, requeued: false, ...(attachBy === undefined ? {} : { attachBy }) })
    return { ok: true, grant: null, rateLimitHeaders: lease.headers }
  }

  /** Tasks ahead, predicted start and the engine it waits for, of a queued task; null when it is not queued. */
  #standing(taskId: string, now: number): QueueStanding | null {
    const position = this.#store.positionOf(taskId, this.#serviceState(now))
    if (position === null) return null
    const candidates = this.#placeable(now)
    const averageTaskMs = this.#averageTaskMs
    const ready = candidates.filter((c) => c.state === 'ready')
    const slotFreeInMs: number[] = []
    if (ready.length > 0) {
      const readyNodes = new Set(ready.map((c) => c.nodeId))
      const busy = this.#store.grantedAt().filter((g) => readyNodes.has(g.node_id))
      for (const g of busy) slotFreeInMs.push(busySlotFreeInMs({ grantedAt: g.granted_at, now, averageTaskMs }))
      const free = ready.reduce((n, c) => n + Math.max(0, c.slots - c.busy), 0)
      for (let i = 0; i < free; i += 1) slotFreeInMs.push(0)
    } else {
      for (const c of candidates.filter(servesSoon)) {
        const upIn = this.#replicaLoads.upInMs(c.nodeId, now)
        for (let i = 0; i < c.slots; i += 1) slotFreeInMs.push(upIn)
      }
    }
    return {
      position,
      predictedStartMs: predictStartMs({ position, slotFreeInMs, averageTaskMs }),
      loading: ready.length > 0 ? null : this.#replicaLoads.loading(candidates),
    }
  }

  /** Why a new task cannot be queued, or null when it can. */
  #refusal(
    policy: PoolPolicy,
    { candidates, queued, placeableNow }: { candidates: readonly PlacementCandidate[]; queued: number; placeableNow: boolean },
  ): Refused | null {
    const poolId = this.#poolId
    if (candidates.length === 0) {
      return refused('no_replica', `no replica is registered for pool "${poolId}": start an agent whose config serves it`)
    }
    const serving = availability(candidates)
    if (serving === 'none') return refused('no_replica', `every replica of pool "${poolId}" is failed or lost; see GET /v2/pools/${poolId}`)
    // The lifecycle starts a stopped replica once the task is queued, unless none may start.
    const cannotStart = serving === 'needs_preload' ? this.#lifecycle.cannotStart(candidates, Date.now()) : null
    if (cannotStart) return refused('no_replica', cannotStart)
    // A task a free slot takes at once never waits, so the capacity does not apply to it.
    if (queued < policy.queue_capacity || placeableNow) return null
    const readySlots = candidates.filter((c) => c.state === 'ready').reduce((n, c) => n + c.slots, 0)
    return refused(
      'queue_full',
      `pool "${poolId}" queue is full (${policy.queue_capacity} waiting)`,
      retryAfterSeconds({ queued, readySlots, averageTaskMs: this.#averageTaskMs }),
    )
  }

  /** Counts a refusal by its reason. */
  #counted(refusal: Refused): Refused {
    this.#metrics.rejected(refusal.error.code)
    return refusal
  }

  /** A queued task's row; its deadlines are the pool's unless the request names its own. */
  #queued(request: AdmissionRequest, policy: PoolPolicy, now: number) {
    const maxWaitMs = request.maxWaitMs ?? policy.queue_timeout_ms
    return { taskId: request.taskId, apiKeyId: request.apiKeyId, now, waitDeadlineAt: now + maxWaitMs, runDeadlineMs: request.runDeadlineMs ?? policy.run_timeout_ms }
  }

  /** The policy this instance knows, else the defaults (a retry may come before the policy is read). */
  #policyOrDefaults(): PoolPolicy {
    return this.#knownPolicy ?? this.#store.policy() ?? DEFAULT_POOL_POLICY
  }

  #move(row: TaskRow, to: TaskPhase): void {
    assertTaskTransition(row.task_id, row.state, to)
  }

  /** granted → ended: the one place a finished attempt frees its slot. */
  #end(row: TaskRow, outcome: TaskOutcome, now: number): void {
    this.#move(row, 'ended')
    this.#store.remove(row.task_id)
    if (!row.node_id) return
    this.#lifecycle.touched(row.node_id, now)
    if (outcome === 'failed_before_start') this.#store.recordFailure(row.node_id)
    if (outcome === 'completed') {
      this.#store.recordSuccess(row.node_id)
      if (row.granted_at !== null) this.#averageTaskMs = this.#averageTaskMs * 0.8 + (now - row.granted_at) * 0.2
    }
  }

  /**
   * The attempt failed before its first token: granted → queued at the head of its class, or
   * queued afresh there when its row was already taken back. A repeated call changes nothing.
   */
  #takeBack(row: TaskRow | undefined, failed: RetryOf, request: AdmissionRequest, now: number): Refused | null {
    if (row && (row.state !== 'granted' || row.attempt !== failed.attempt)) return null
    if (failed.elsewhereOnly && !this.#placeable(now).some((c) => c.nodeId !== failed.nodeId && servesSoon(c))) {
      return refused('no_replica', `no replica of pool "${this.#poolId}" but the one on node ${failed.nodeId} can take the task`)
    }
    this.#store.recordFailure(failed.nodeId)
    // The node it failed on may not have said so yet (its state change is on its way): keep off it
    // a moment, or for good when its engine is up but silent.
    const policy = this.#policyOrDefaults()
    const waitDeadlineAt = now + (request.maxWaitMs ?? policy.queue_timeout_ms)
    const avoid = { nodeId: failed.nodeId, until: failed.elsewhereOnly ? waitDeadlineAt : now + FAILED_NODE_BACKOFF_MS }
    if (!row) {
      this.#store.enqueue({ ...this.#queued(request, policy, now), priority: request.priority ?? 'interactive', attempt: failed.attempt, requeued: true, avoid })
      return null
    }
    this.#move(row, 'queued')
    this.#store.requeue(row.task_id, waitDeadlineAt, avoid)
    return null
  }

  /**
   * Grants free slots to queued tasks in service order (`PoolStorage.queueInServiceOrder`), while slots last. Only a task
   * whose Worker waits here is granted: after a restart of this object, a queued task waits for
   * its Worker to ask again (`admit` rejoins), and one whose Worker died is dropped at the alarm.
   */
  #pump(now: number): void {
    for (;;) {
      const head = this.#store.queueInServiceOrder(PUMP_SCAN_TASKS, this.#serviceState(now)).find((task) => this.#waiters.has(task.task_id))
      if (!head) return
      const avoiding = head.avoid_node !== null && (head.avoid_until ?? 0) > now
      const affinityKey = this.#affinityKeys.get(head.task_id)
      const replica = placeTask(this.#placeable(now).filter((c) => !avoiding || c.nodeId !== head.avoid_node), affinityKey, this.#affinity)
      if (!replica) return
      this.#move(head, 'granted')
      this.#store.grant(head.task_id, replica.nodeId, now)
      this.#noteGrant(replica.nodeId, head.api_key_id, affinityKey, now)
      this.#metrics.granted({ attempt: head.attempt, enqueuedAt: head.enqueued_at, now })
      this.#settle(head.task_id, { ok: true, grant: this.#grantOf(head.task_id, replica.nodeId, head.attempt + 1) })
    }
  }

  /** Queued tasks from before this instance whose Worker did not ask again within the grace: gone with a restart. */
  #dropOrphans(now: number): void {
    if (now < this.#startedAt + REJOIN_GRACE_MS) return
    for (const task of this.#store.queuedBefore(this.#startedAt)) {
      if (this.#waiters.has(task.task_id)) continue
      logEvent('pool.orphan_dropped', { pool: this.#poolId, task: task.task_id })
      this.#move(task, 'ended')
      this.#store.remove(task.task_id)
    }
    this.#orphansChecked = true
  }

  /** What placement and the service order remember of a grant: the replica's turn, the key's turn, the session's replica. */
  #noteGrant(nodeId: string, apiKeyId: string | null, affinityKey: string | undefined, now: number): void {
    this.#lastGrantedAt.set(nodeId, now)
    this.#turns.served(apiKeyId, now)
    if (affinityKey !== undefined) this.#affinity.served(affinityKey, nodeId)
  }

  /** What `serviceOrder` needs to rank the queue now. */
  #serviceState(now: number): ServiceState {
    const policy = this.#knownPolicy ?? this.#store.policy()
    return { now, batchAgingMs: policy?.batch_aging_ms ?? DEFAULT_BATCH_AGING_MS, lastServedAt: this.#turns.lastServedAt }
  }

  #settle(taskId: string, result: AdmissionResult): void {
    const waiter = this.#waiters.get(taskId)
    this.#waiters.delete(taskId)
    this.#affinityKeys.delete(taskId)
    waiter?.(result)
  }

  #grantOf(taskId: string, nodeId: string, attempt: number): Grant {
    const poolId = this.#poolId
    const policy = this.#policyOrDefaults()
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

  /**
   * Makes sure the alarm fires by the earliest deadline. An alarm already set no later than that
   * stays (when it fires early it finds nothing due and re-arms), so most tasks cost no alarm write.
   */
  async #armAlarm(): Promise<void> {
    const now = Date.now()
    let next = this.#store.nextDeadline(now)
    const metricsDue = this.#metrics.flushDueAt
    if (metricsDue !== null) next = Math.min(next ?? Infinity, metricsDue)
    const lifecycleDue = this.#lifecycle.dueAt
    if (lifecycleDue !== null) next = Math.min(next ?? Infinity, lifecycleDue)
    // Queued tasks this instance found at its start are looked at once their Workers had time to come back.
    if (!this.#orphansChecked && this.#store.queuedBefore(this.#startedAt).length > 0) next = Math.min(next ?? Infinity, this.#startedAt + REJOIN_GRACE_MS)
    else this.#orphansChecked = true
    if (next === null) return
    // Read only when unknown: null means none is set (the alarm handler says so of the one that fired).
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm()
    if (this.#alarmAt !== null && this.#alarmAt <= next) return
    this.#alarmAt = next
    countStorageWrite()
    await this.ctx.storage.setAlarm(next)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'PoolObject', name: this.ctx.id.name, method }, work)
  }
}
