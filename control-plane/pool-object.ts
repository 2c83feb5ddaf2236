import { DurableObject } from 'cloudflare:workers'
import { PoolPolicy } from '../protocol/index.ts'
import type { PoolMetrics, PoolPolicyInput, ReplicaReport } from '../protocol/index.ts'
import { settleKeyLease, takeKeyLease } from './limits/key-lease.ts'
import { newTaskRefusal, newTaskRow } from './pool/admission.ts'
import type { AdmissionRefusal, AdmissionRequest, AdmissionResult, AttemptReport, EnqueueResult, Grant, QueueStanding, TaskOutcome } from './pool/grant.ts'
import type { PlacementCandidate } from './pool/placement.ts'
import { NodeCalls } from './pool/node-calls.ts'
import { PoolAlarm } from './pool/pool-alarm.ts'
import { PoolLifecycle } from './pool/pool-lifecycle.ts'
import type { ReloadAnswer } from './pool/pool-lifecycle.ts'
import { PoolMetricsRecorder } from './pool/pool-metrics.ts'
import { Orphans } from './pool/orphans.ts'
import type { PoolStatus } from './pool/pool-status.ts'
import { PoolStorage } from './pool/pool-storage.ts'
import { PoolPolicySource } from './pool/policy-source.ts'
import { poolRefusals } from './pool/refusals.ts'
import { ReplicaLoads } from './pool/replica-loads.ts'
import { TaskQueue } from './pool/task-queue.ts'
import { flushDueUsage } from './pool/usage-flush.ts'
import { registryFor } from './registry/registry-for.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import type { Bindings } from './runtime/env.ts'

const NO_REPORT: AttemptReport = { usage: null, ttftMs: null }

/**
 * Live state of one pool, named by its pool id. The decisions are plain functions in `pool/`
 * (admission, slots, standing, lifecycle, queue order, placement); this object holds what they
 * need between calls and does the I/O: waiting admissions, storage, the alarm, and calls to the
 * registry and other objects. It sees task starts and ends, never tokens.
 *
 * Slots: a task holds one while its row is `granted` (see `TaskQueue`).
 */
export class PoolObject extends DurableObject<Bindings> {
  readonly #store: PoolStorage
  readonly #metrics: PoolMetricsRecorder
  readonly #lifecycle: PoolLifecycle
  readonly #alarm: PoolAlarm
  readonly #queue: TaskQueue
  readonly #policy: PoolPolicySource
  /** When this instance started: grants older than that cannot be in flight. */
  readonly #startedAt = Date.now()
  readonly #orphans: Orphans
  readonly #replicaLoads = new ReplicaLoads()
  readonly #nodes: NodeCalls

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new PoolStorage(ctx.storage.sql)
    this.#policy = new PoolPolicySource(this.#store, { poolId: this.#poolId, registry: () => registryFor(this.env) })
    this.#metrics = new PoolMetricsRecorder(ctx.storage.sql)
    this.#alarm = new PoolAlarm(ctx.storage)
    const background = (promise: Promise<unknown>) => this.ctx.waitUntil(promise)
    this.#nodes = new NodeCalls(env, { poolId: this.#poolId, background })
    this.#lifecycle = new PoolLifecycle(ctx.storage.sql, {
      poolId: this.#poolId,
      send: (nodeId, command, deadlineMs) => {
        if (command === 'preload') this.#replicaLoads.startedOnDemand(nodeId, Date.now())
        return this.#nodes.command(nodeId, command, deadlineMs)
      },
      background,
    })
    this.#queue = new TaskQueue(this.#store, this.#metrics, {
      poolId: this.#poolId,
      policy: () => this.#policy.orDefaults(),
      placeable: (candidates, now) => this.#lifecycle.placeable(candidates, now),
      touched: (nodeId, now) => this.#lifecycle.touched(nodeId, now),
      settleLease: (apiKeyId, taskId) => this.ctx.waitUntil(settleKeyLease(this.env, { apiKeyId, taskId, usage: null })),
      cannotStart: (candidates, now) => this.#lifecycle.cannotStart(candidates, now),
      dispatch: (grant, generation, preempted) => this.#nodes.dispatch(grant, generation, preempted),
      preempt: (nodeId, taskId) => this.#nodes.preempt(nodeId, taskId),
    })
    this.#orphans = new Orphans(this.#store, this.#queue, { poolId: this.#poolId, startedAt: this.#startedAt })
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
        const refusal = this.#queue.takeBack(existing, request.retryOf, request, now)
        if (refusal) return this.#counted(refusal)
      } else if (!existing) {
        const admitted = await this.#admitNew(request, now, { grantNow: true })
        if (!admitted.ok) return this.#counted(admitted.refusal)
        rateLimitHeaders = admitted.rateLimitHeaders
        const { grant, preempted } = admitted
        if (grant && request.generation) {
          this.#nodes.dispatch(grant, request.generation, preempted)
          return { ok: true, grant, rateLimitHeaders, dispatched: true }
        }
        if (grant) {
          // Its Worker dispatches it: the line it preempted is stopped on the node first.
          if (preempted) await this.#nodes.preempt(grant.nodeId, preempted)
          return { ok: true, grant, rateLimitHeaders }
        }
      } else if (existing.attach_by !== null) {
        // A task enqueued ahead of its reader: from now on someone waits for it.
        this.#store.markAttached(request.taskId)
      }
      // A call repeated after a restart of this object collects the grant it missed.
      const row = this.#store.task(request.taskId)
      if (row?.state === 'granted') return { ok: true, grant: this.#queue.grantOf(row.task_id, row.node_id ?? '', row.attempt) }
      const granted = this.#queue.waiters.wait(request.taskId, { affinityKey: request.affinityKey, generation: request.generation })
      await this.#afterChange(now)
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
        await this.#afterChange(now)
      }
      const standing = this.#queue.standing(request.taskId, this.#replicaLoads, now)
      if (!standing) return poolRefusals.noLongerQueued(this.#poolId, request.taskId)
      return { ok: true, standing, ...(rateLimitHeaders ? { rateLimitHeaders } : {}) }
    })
  }

  /** Where a queued task stands now; null once it has left the queue (granted, ended or dropped). */
  standing(taskId: string): Promise<QueueStanding | null> {
    return this.#guard('standing', () => this.#queue.standing(taskId, this.#replicaLoads, Date.now()))
  }

  /** Takes a queued task out of the queue; its waiting `admit` answers `cancelled`. False when it is not queued. */
  cancelQueued(taskId: string): Promise<boolean> {
    return this.#guard('cancelQueued', () => {
      const row = this.#store.task(taskId)
      if (row?.state !== 'queued') return false
      this.#queue.leave(row, { reason: 'cancelled', answer: poolRefusals.cancelledWhileQueued(taskId) })
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
      this.#queue.end(row, outcome, now)
      await this.#afterChange(now)
    })
  }

  /** A node reported its replica. Grants on it that its NodeObject no longer streams give their slots back. */
  syncReplica(nodeId: string, report: ReplicaReport, streamedTaskIds: readonly string[]): Promise<void> {
    return this.#guard('syncReplica', async () => {
      const now = Date.now()
      // A report sent before the node's revocation, arriving after it.
      if (this.#store.isRevoked(nodeId)) return
      // Learn the policy before the first request needs it.
      if (!this.#policy.known()) this.ctx.waitUntil(this.#policy.load())
      this.#replicaLoads.observe(nodeId, report.state, now, report.download ?? null)
      this.#store.upsertReplica(nodeId, report, now)
      this.#queue.reconcile(nodeId, streamedTaskIds, { startedAt: this.#startedAt, now })
      await this.#afterChange(now)
    })
  }

  /**
   * The node is gone (for good when revoked): its replica takes no task, and a queue no replica
   * is left for ends. Its tasks keep their slots until their Workers, told `node_lost`, release them.
   */
  replicaLost(nodeId: string, { revoked = false }: { revoked?: boolean } = {}): Promise<void> {
    return this.#guard('replicaLost', async () => {
      if (revoked) this.#store.removeReplica(nodeId, Date.now())
      else this.#store.markLost(nodeId, Date.now())
      await this.#afterChange(Date.now())
    })
  }

  /** An operator changed the policy in the registry; admission follows it from now on. */
  setPolicy(input: PoolPolicyInput): Promise<void> {
    return this.#guard('setPolicy', async () => {
      this.#policy.set(PoolPolicy.parse(input))
      await this.#afterChange(Date.now())
    })
  }

  /** A maintenance drain (on) stays until a preload (off): no replica of the pool is started meanwhile. */
  setMaintenance(on: boolean): Promise<void> {
    return this.#guard('setMaintenance', () => {
      this.#lifecycle.setMaintenance(on, Date.now())
      if (!on) return
      // Tasks waiting for a slot would only wait out their deadline.
      this.#queue.strand(poolRefusals.cannotStart(this.#lifecycle.maintenanceRefusal()))
    })
  }

  /**
   * The node is cordoned (on) or uncordoned: its replica takes no new task and is never started
   * meanwhile. Uncordoned, an eager pool starts its stopped replica there at once.
   */
  cordon(nodeId: string, on: boolean): Promise<void> {
    return this.#guard('cordon', async () => {
      const now = Date.now()
      if (on) this.#lifecycle.setCordon(nodeId, true, now)
      else {
        const known = await this.#policy.load()
        // Without a policy (no pool in the registry) there is nothing to start.
        if (known.ok) this.#lifecycle.uncordon(nodeId, { policy: known.policy, candidates: this.#queue.candidates(), now })
        else this.#lifecycle.setCordon(nodeId, false, now)
      }
      await this.#afterChange(now)
    })
  }

  /** Reloads the pool's replicas, one at a time when two or more are ready; answers the commands sent now. */
  reload({ deadlineMs }: { deadlineMs?: number }): Promise<ReloadAnswer> {
    return this.#guard('reload', async () => {
      const now = Date.now()
      const answer = await this.#lifecycle.reload(this.#queue.candidates(), { now, ...(deadlineMs !== undefined ? { deadlineMs } : {}) })
      await this.#afterChange(now)
      return answer
    })
  }

  /** Queue depth and per-replica slot use, for the admin API. */
  status(): Promise<PoolStatus> {
    return this.#guard('status', () => ({
      queueDepth: this.#store.queuedCount(),
      replicas: this.#queue.candidates().map((c) => ({ nodeId: c.nodeId, state: c.state, slots: c.slots, busy: c.busy })),
      lifecycle: this.#lifecycle.status(),
    }))
  }

  /** Counters, histograms and gauges of this pool, for `/metrics`. */
  metrics(): Promise<PoolMetrics> {
    return this.#guard('metrics', () => this.#metrics.snapshot(this.#poolId, { queueDepth: this.#store.queuedCount(), replicas: this.#queue.candidates() }))
  }

  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      this.#alarm.fired()
      const now = Date.now()
      this.#queue.expire(now)
      this.#orphans.drop(now)
      this.#metrics.flush()
      await flushDueUsage(this.#store, { registry: () => registryFor(this.env), poolId: this.#poolId, averageTaskMs: this.#queue.averageTaskMs, now })
      await this.#afterChange(now)
    })
  }

  /** After anything that changed the queue, the slots or the policy: grant what can be, start or stop replicas, arm the alarm. */
  async #afterChange(now: number): Promise<void> {
    this.#queue.pump(now)
    this.#queue.strandIfUnservable(now)
    const policy = this.#policy.known()
    if (policy)
      this.#lifecycle.tick({ policy, candidates: this.#queue.candidates(), queued: this.#store.queuedCount(), averageTaskMs: this.#queue.averageTaskMs, now })
    await this.#armAlarm(now)
  }

  /** A task the pool has not seen: refused, granted at once (`grantNow`, nothing ahead and a slot free: one write), or queued. */
  async #admitNew(
    request: AdmissionRequest,
    now: number,
    { grantNow }: { grantNow: boolean },
  ): Promise<
    { ok: true; grant: Grant | null; preempted?: string; rateLimitHeaders: Record<string, string> | undefined } | { ok: false; refusal: AdmissionRefusal }
  > {
    const known = await this.#policy.load()
    if (!known.ok) return known
    const { policy } = known
    const row = newTaskRow(request, policy, now)
    const lease = await takeKeyLease(this.env, request, { poolDefaults: policy.key_limits, holdMs: row.waitDeadlineAt - now + row.runDeadlineMs })
    if (!lease.ok) return lease
    const candidates = this.#queue.placeable(now)
    const queued = this.#store.queuedCount()
    const placed = grantNow ? this.#queue.placeNow(row.priority, candidates, request.affinityKey, now) : null
    const pool = {
      poolId: this.#poolId,
      policy,
      candidates,
      queued,
      averageTaskMs: this.#queue.averageTaskMs,
      cannotStart: (c: readonly PlacementCandidate[]) => this.#lifecycle.cannotStart(c, now),
    }
    const refusal = newTaskRefusal(pool, placed !== null)
    if (refusal) {
      if (lease.counted && request.apiKeyId) this.ctx.waitUntil(settleKeyLease(this.env, { apiKeyId: request.apiKeyId, taskId: request.taskId, usage: null }))
      return { ok: false, refusal }
    }
    this.#metrics.count('tasks_admitted')
    if (placed) {
      if (placed.preempted) this.#queue.preempt(placed.preempted, now)
      const grant = this.#queue.grantNew(row, placed.nodeId, request.affinityKey)
      await this.#armAlarm(now)
      return { ok: true, grant, rateLimitHeaders: lease.headers, ...(placed.preempted ? { preempted: placed.preempted.task_id } : {}) }
    }
    const attachBy = request.attachWithinMs === undefined ? undefined : now + request.attachWithinMs
    this.#store.enqueue({ ...row, attempt: 0, requeued: false, ...(attachBy === undefined ? {} : { attachBy }) })
    return { ok: true, grant: null, rateLimitHeaders: lease.headers }
  }

  #counted(refusal: AdmissionRefusal): AdmissionRefusal {
    this.#metrics.rejected(refusal.error.code)
    return refusal
  }

  /** Arms the alarm for the earliest deadline, flush, lifecycle step, lost replica's grace, held slot's release, or (once after a restart) orphan check. */
  async #armAlarm(now: number): Promise<void> {
    await this.#alarm.arm([
      this.#store.nextDeadline(now),
      this.#metrics.flushDueAt,
      this.#lifecycle.dueAt,
      this.#queue.strandCheckAt(now),
      this.#queue.holdEndsAt(now),
      this.#orphans.dueAt(),
    ])
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'PoolObject', name: this.ctx.id.name, method }, work)
  }
}
