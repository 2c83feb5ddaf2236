import { DurableObject } from 'cloudflare:workers'
import type { ReplicaReport } from '../protocol/index.ts'
import type { Bindings } from './env.ts'
import { logEvent } from './log.ts'
import { availability, pickReplica } from './pool/placement.ts'
import { PoolStorage } from './pool/pool-storage.ts'
import { retryAfterSeconds } from './pool/queue-order.ts'
import type { AdmissionRequest, AdmissionResult, Grant, TaskOutcome } from './task-grant.ts'
import { replicaId } from './registry/replicas.ts'

/** A grant whose task never started on its node within this time gives its slot back. */
export const GRANT_START_TIMEOUT_MS = 30_000
/** Assumed task length before any task has finished, for Retry-After. */
const DEFAULT_TASK_MS = 5_000
/** A task the agent no longer reports is dropped only after this grace (it may just have ended). */
export const RUNNING_TASK_GRACE_MS = 2_000

type AdmissionError = Extract<AdmissionResult, { ok: false }>['error']

function refused(code: AdmissionError['code'], message: string, retryAfter?: number): AdmissionResult {
  return { ok: false, error: { code, message, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) } }
}

export interface PoolStatus {
  queueDepth: number
  replicas: Array<{ nodeId: string; state: string; slots: number; busy: number }>
}

/**
 * Live state of one pool: the persisted queue, the replica table, admission, placement and slot
 * accounting. It sees task starts and ends, never tokens.
 */
export class PoolObject extends DurableObject<Bindings> {
  readonly #store: PoolStorage
  /** Admission calls waiting for a slot; rebuilt by retried `admit` calls after a restart. */
  readonly #waiters = new Map<string, (result: AdmissionResult) => void>()

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new PoolStorage(ctx.storage.sql)
  }

  /** The pool this object serves, remembered from the first call that named it. */
  get #poolId(): string | undefined {
    const value: unknown = this.ctx.storage.kv.get('pool_id')
    return typeof value === 'string' ? value : undefined
  }

  #remember(poolId: string): void {
    if (this.#poolId !== poolId) this.ctx.storage.kv.put('pool_id', poolId)
  }

  /**
   * Admits a task: answers with a grant once a slot is free, or refuses with `queue_full`,
   * `no_replica` or `queue_timeout`. Calling it again with the same task id (after a restart of
   * this object) rejoins the queue where the task stood.
   */
  async admit(poolId: string, request: AdmissionRequest): Promise<AdmissionResult> {
    this.#remember(poolId)
    const now = Date.now()
    const existing = this.#store.task(request.taskId)
    if (existing && request.requeued && existing.state !== 'queued') {
      this.#release(request.taskId, 'failed_before_start', now)
    } else if (existing?.state === 'granted' || existing?.state === 'running') {
      return { ok: true, grant: this.#grantOf(request.taskId, existing.node_id ?? '') }
    }

    if (!this.#store.task(request.taskId)) {
      const candidates = this.#store.candidates()
      if (candidates.length === 0) {
        return refused('no_replica', `no replica is registered for pool "${poolId}": start an agent whose config serves it`)
      }
      const serving = availability(candidates)
      if (serving === 'none') {
        return refused('no_replica', `every replica of pool "${poolId}" is failed or lost; see GET /v2/pools/${poolId}`)
      }
      if (serving === 'needs_preload') this.#preloadOnDemand(candidates.filter((c) => c.state === 'stopped').map((c) => c.nodeId))
      const queued = this.#store.queuedCount()
      if (!request.requeued && queued >= request.queueCapacity) {
        const readySlots = candidates.filter((c) => c.state === 'ready').reduce((n, c) => n + c.slots, 0)
        return refused(
          'queue_full',
          `pool "${poolId}" queue is full (${request.queueCapacity} waiting)`,
          retryAfterSeconds({ queued, readySlots, averageTaskMs: this.#store.averageTaskMs(DEFAULT_TASK_MS) }),
        )
      }
      this.#store.enqueue({ taskId: request.taskId, priority: request.priority, requeued: request.requeued, now, waitDeadlineAt: now + request.maxWaitMs })
    }

    const granted = new Promise<AdmissionResult>((resolve) => this.#waiters.set(request.taskId, resolve))
    this.#pump(now)
    await this.#armAlarm()
    return granted
  }

  /** Where a queued task stands (1-based), or null once it left the queue. */
  async queuePosition(taskId: string): Promise<number | null> {
    return this.#store.queuePosition(taskId)
  }

  /** The node confirmed the task started on the engine; its grant no longer expires. */
  async markRunning(taskId: string): Promise<void> {
    this.#store.markRunning(taskId, Date.now())
  }

  /** Gives a task's slot back (or takes it out of the queue). Safe to call twice. */
  async release(taskId: string, outcome: TaskOutcome): Promise<void> {
    const now = Date.now()
    this.#release(taskId, outcome, now)
    this.#pump(now)
    await this.#armAlarm()
  }

  /**
   * A node reported its replica of this pool. Tasks the node says are no longer running there
   * give their slots back, so busy counts follow what agents report.
   */
  async syncReplica(poolId: string, nodeId: string, report: ReplicaReport, liveTaskIds: readonly string[]): Promise<void> {
    this.#remember(poolId)
    const now = Date.now()
    this.#store.upsertReplica(nodeId, report, now)
    const live = new Set(liveTaskIds)
    for (const task of this.#store.tasksOnNode(nodeId)) {
      if (task.state === 'running' && !live.has(task.task_id) && (task.started_at ?? 0) + RUNNING_TASK_GRACE_MS < now) {
        logEvent('pool.slot_reconciled', { pool: poolId, node: nodeId, task: task.task_id })
        this.#store.remove(task.task_id)
      }
    }
    this.#pump(now)
    await this.#armAlarm()
  }

  /** The node is gone: its replica stops taking tasks and its slots are freed. */
  async replicaLost(poolId: string, nodeId: string): Promise<void> {
    this.#remember(poolId)
    const now = Date.now()
    this.#store.setReplicaState(nodeId, 'lost', now)
    for (const task of this.#store.tasksOnNode(nodeId)) this.#store.remove(task.task_id)
    this.#pump(now)
    await this.#armAlarm()
  }

  /** Queue depth and per-replica slot use, for the admin API and metrics. */
  async status(): Promise<PoolStatus> {
    return {
      queueDepth: this.#store.queuedCount(),
      replicas: this.#store.candidates().map((c) => ({ nodeId: c.nodeId, state: c.state, slots: c.slots, busy: c.busy })),
    }
  }

  override async alarm(): Promise<void> {
    const now = Date.now()
    for (const task of this.#store.expiredQueued(now)) {
      this.#store.remove(task.task_id)
      this.#settle(task.task_id, refused('queue_timeout', `no slot became free in pool "${this.#poolId ?? ''}" before the task's wait deadline`))
    }
    for (const task of this.#store.expiredGrants(now - GRANT_START_TIMEOUT_MS)) {
      logEvent('pool.grant_expired', { pool: this.#poolId, task: task.task_id, node: task.node_id })
      this.#release(task.task_id, 'expired', now)
    }
    this.#pump(now)
    await this.#armAlarm()
  }

  #release(taskId: string, outcome: TaskOutcome, now: number): void {
    const row = this.#store.remove(taskId)
    if (!row) return
    if (row.state === 'queued') {
      this.#settle(taskId, refused('cancelled', 'the task was cancelled while queued'))
      return
    }
    if (!row.node_id) return
    if (outcome === 'failed_before_start') this.#store.recordFailure(row.node_id)
    if (outcome === 'completed') {
      this.#store.recordSuccess(row.node_id)
      if (row.started_at !== null) this.#store.recordTaskDuration(now - row.started_at, DEFAULT_TASK_MS)
    }
  }

  /** Grants free slots to queued tasks, head of the queue first, while slots last. */
  #pump(now: number): void {
    for (;;) {
      const head = this.#store.headOfQueue()
      if (!head) return
      const replica = pickReplica(this.#store.candidates())
      if (!replica) return
      // A task whose admit call was lost in a restart is granted anyway: the retried call
      // collects the grant, and an unclaimed grant expires like any other.
      this.#store.grant(head.task_id, replica.nodeId, now)
      this.#settle(head.task_id, { ok: true, grant: this.#grantOf(head.task_id, replica.nodeId) })
    }
  }

  #settle(taskId: string, result: AdmissionResult): void {
    const waiter = this.#waiters.get(taskId)
    this.#waiters.delete(taskId)
    waiter?.(result)
  }

  #grantOf(taskId: string, nodeId: string): Grant {
    const poolId = this.#poolId ?? ''
    return { taskId, poolId, nodeId, replicaId: replicaId(nodeId, poolId) }
  }

  #preloadOnDemand(nodeIds: string[]): void {
    const poolId = this.#poolId
    const nodeId = nodeIds[0]
    if (!poolId || !nodeId) return
    logEvent('pool.preload_on_demand', { pool: poolId, node: nodeId })
    const node = this.env.NODES.get(this.env.NODES.idFromName(nodeId))
    this.ctx.waitUntil(node.command(nodeId, { command: 'preload', pool: poolId }).then(() => undefined, () => undefined))
  }

  async #armAlarm(): Promise<void> {
    const next = this.#store.nextDeadline(GRANT_START_TIMEOUT_MS)
    if (next === null) await this.ctx.storage.deleteAlarm()
    else await this.ctx.storage.setAlarm(next)
  }
}
