import type { PoolCommand, PoolCommandResult, PoolPolicy } from '../../protocol/index.ts'
import { logEvent } from '../runtime/log.ts'
import type { CommandResult } from './command-result.ts'
import { LifecycleStorage } from './lifecycle-storage.ts'
import type { ActivityRow } from './lifecycle-storage.ts'
import { mayStart, placementState, planLifecycle, startsOnUncordon } from './lifecycle.ts'
import type { LifecycleReplica } from './lifecycle.ts'
import type { PlacementCandidate } from './placement.ts'
import { ROLLING_STEP_TIMEOUT_MS, advanceReload, beginReload } from './rolling-reload.ts'
import type { RollingReload, RolloutCommand, RolloutStep } from './rolling-reload.ts'

/** An idle replica told to drain lets a task that slipped in meanwhile finish this long. */
export const IDLE_DRAIN_DEADLINE_MS = 30_000

export type SendCommand = (nodeId: string, command: PoolCommand, deadlineMs?: number) => Promise<CommandResult>

export interface LifecycleStatus {
  maintenanceDrained: boolean
  rollingReload: { order: string[]; node_id: string; phase: RollingReload['phase'] } | null
}

export interface ReloadAnswer {
  nodes: PoolCommandResult['nodes']
  rolling: string[]
}

/**
 * The pool's lifecycle: acts on the decisions of `lifecycle.ts` and `rolling-reload.ts` by
 * sending preload, drain and reload to nodes, and keeps what they need in Durable Object
 * storage. Its state is small and read once per instance; every change is written through.
 */
export class PoolLifecycle {
  readonly #store: LifecycleStorage
  readonly #poolId: string
  readonly #send: SendCommand
  readonly #background: (promise: Promise<unknown>) => void
  #maintenance: boolean
  readonly #cordoned: Set<string>
  readonly #activity: Map<string, ActivityRow>
  /**
   * When each replica last ended a task, in memory only: a stored write per task would cost more
   * than it saves. After a restart every replica counts as active since the restart, so idle drain
   * may come late by one period, never early.
   */
  readonly #lastTaskEndedAt = new Map<string, number>()
  readonly #startedAt = Date.now()
  #rollout: RollingReload | null
  /** When the pool's alarm should look again, as of the last tick. */
  #dueAt: number | null = null

  constructor(storage: SqlStorage, options: { poolId: string; send: SendCommand; background: (promise: Promise<unknown>) => void }) {
    this.#store = new LifecycleStorage(storage)
    this.#poolId = options.poolId
    this.#send = options.send
    this.#background = options.background
    this.#maintenance = this.#store.maintenanceSince() !== null
    this.#cordoned = this.#store.cordoned()
    this.#activity = new Map(this.#store.activity().map((row) => [row.node_id, row]))
    this.#rollout = this.#store.rollingReload()
  }

  get dueAt(): number | null {
    return this.#dueAt
  }

  /** For the admin API: the maintenance drain, and a rolling reload under way. */
  status(): LifecycleStatus {
    const rollout = this.#rollout
    return {
      maintenanceDrained: this.#maintenance,
      rollingReload: rollout ? { order: rollout.order, node_id: rollout.order[rollout.index] ?? '', phase: rollout.phase } : null,
    }
  }

  /** The replicas as placement should see them: see `placementState`. */
  placeable(candidates: readonly PlacementCandidate[], now: number): PlacementCandidate[] {
    return candidates.map((c) => ({ ...c, state: placementState(this.#replica(c, now), { maintenance: this.#maintenance, now }) }))
  }

  /** Why no replica can be started for a task that found none serving; null when one can. */
  cannotStart(candidates: readonly PlacementCandidate[], now: number): string | null {
    if (this.#maintenance) return this.maintenanceRefusal()
    // A replica already told to start counts: the task waits for that start.
    if (!candidates.some((c) => mayStart(this.#replica(c, now))))
      return `every stopped replica of pool "${this.#poolId}" is on a cordoned node; see GET /v2/nodes`
    return null
  }

  /** What a task is told while the pool is drained for maintenance. */
  maintenanceRefusal(): string {
    return `pool "${this.#poolId}" is drained for maintenance; POST /v2/pools/${this.#poolId}/preload to serve it again`
  }

  /** A task on this node ended: the replica was busy until now. */
  touched(nodeId: string, now: number): void {
    this.#lastTaskEndedAt.set(nodeId, now)
  }

  /** Looks at the replica table and queue and starts or stops replicas as the policy says. */
  tick({
    policy,
    candidates,
    queued,
    averageTaskMs,
    now,
  }: {
    policy: PoolPolicy
    candidates: readonly PlacementCandidate[]
    queued: number
    averageTaskMs: number
    now: number
  }): void {
    const replicas = candidates.map((c) => this.#observe(c, now))
    if (this.#rollout) this.#apply(advanceReload(this.#rollout, replicas, now))
    const plan = planLifecycle({ policy, replicas, queued, averageTaskMs, maintenance: this.#maintenance, rolling: this.#rollout !== null, now })
    for (const nodeId of plan.start) {
      logEvent('pool.replica_start', {
        pool: this.#poolId,
        node: nodeId,
        queued,
        reason: replicas.some((r) => r.state === 'ready') ? 'scale_out' : 'on_demand',
      })
      this.#command(nodeId, 'preload', now)
    }
    for (const nodeId of plan.stop) {
      logEvent('pool.idle_drain', { pool: this.#poolId, node: nodeId, idle_drain_ms: policy.idle_drain_ms })
      this.#command(nodeId, 'drain', now, IDLE_DRAIN_DEADLINE_MS)
    }
    const rolloutDue = this.#rollout ? this.#rollout.stepStartedAt + ROLLING_STEP_TIMEOUT_MS : null
    this.#dueAt = rolloutDue === null ? plan.nextAt : Math.min(rolloutDue, plan.nextAt ?? Infinity)
  }

  /** A maintenance drain stays until a preload: nothing is started for the pool meanwhile. */
  setMaintenance(on: boolean, now: number): void {
    if (on === this.#maintenance) return
    this.#maintenance = on
    this.#store.setMaintenance(on ? now : null)
    if (on) this.#setRollout(null)
    logEvent(on ? 'pool.maintenance_drain' : 'pool.maintenance_lifted', { pool: this.#poolId })
  }

  /** A cordoned node's replica takes no task and is never started, until uncordoned. */
  setCordon(nodeId: string, on: boolean, now: number): void {
    if (on === this.#cordoned.has(nodeId)) return
    if (on) this.#cordoned.add(nodeId)
    else this.#cordoned.delete(nodeId)
    this.#store.setCordon(nodeId, on ? now : null)
  }

  /** Lifts the node's cordon; an eager pool's replica there that is stopped is started now, not on the next request. */
  uncordon(nodeId: string, { policy, candidates, now }: { policy: PoolPolicy; candidates: readonly PlacementCandidate[]; now: number }): void {
    this.setCordon(nodeId, false, now)
    const candidate = candidates.find((c) => c.nodeId === nodeId)
    if (!candidate || !startsOnUncordon(this.#observe(candidate, now), { policy, maintenance: this.#maintenance, now })) return
    logEvent('pool.replica_start', { pool: this.#poolId, node: nodeId, queued: 0, reason: 'uncordoned' })
    this.#command(nodeId, 'preload', now)
  }

  /** Starts a reload of the pool: rolling when two or more replicas are ready. Answers the commands sent now. */
  async reload(candidates: readonly PlacementCandidate[], { now, deadlineMs }: { now: number; deadlineMs?: number }): Promise<ReloadAnswer> {
    const step = beginReload(
      candidates.map((c) => this.#replica(c, now)),
      { now, ...(deadlineMs !== undefined ? { deadlineMs } : {}) },
    )
    const results = this.#apply(step)
    const nodes = await Promise.all(results.map(async ({ nodeId, result }) => ({ node_id: nodeId, ...(await result) })))
    const queued = (step.rollout?.order ?? []).filter((nodeId) => !nodes.some((n) => n.node_id === nodeId))
    return { nodes: [...nodes, ...queued.map((nodeId) => ({ node_id: nodeId, ok: true, error: null }))], rolling: step.rollout?.order ?? [] }
  }

  #apply(step: RolloutStep): Array<{ nodeId: string; result: Promise<CommandResult> }> {
    if (step.stopped) logEvent('pool.rolling_reload_stopped', { pool: this.#poolId, reason: step.stopped })
    else if (this.#rollout && !step.rollout) logEvent('pool.rolling_reload_done', { pool: this.#poolId, nodes: this.#rollout.order.length })
    this.#setRollout(step.rollout)
    const now = Date.now()
    return step.commands.map((c: RolloutCommand) => {
      logEvent('pool.reload_step', { pool: this.#poolId, node: c.nodeId, command: c.command })
      return { nodeId: c.nodeId, result: this.#command(c.nodeId, c.command, now, step.rollout?.deadlineMs) }
    })
  }

  #setRollout(rollout: RollingReload | null): void {
    // An unchanged step is the same object: nothing to write.
    if (rollout === this.#rollout) return
    this.#rollout = rollout
    this.#store.setRollingReload(rollout)
  }

  #command(nodeId: string, command: PoolCommand, now: number, deadlineMs?: number): Promise<CommandResult> {
    if (command !== 'reload') {
      const row = this.#activity.get(nodeId)
      if (row) this.#put({ ...row, sent_command: command, sent_at: now })
    }
    const result = this.#send(nodeId, command, deadlineMs).then(
      (r) => r,
      (error: unknown): CommandResult => ({ ok: false, error: { code: 'node_lost', message: String(error) } }),
    )
    this.#background(result)
    return result
  }

  /** The replica as the lifecycle sees it; a change of state is remembered, becoming ready counts as activity. */
  #observe(c: PlacementCandidate, now: number): LifecycleReplica {
    const row = this.#activity.get(c.nodeId)
    if (!row) this.#put({ node_id: c.nodeId, state: c.state, active_at: now, sent_command: null, sent_at: null })
    else if (row.state !== c.state) this.#put({ ...row, state: c.state, active_at: c.state === 'ready' ? now : row.active_at })
    return this.#replica(c, now)
  }

  #replica(c: PlacementCandidate, now: number): LifecycleReplica {
    const row = this.#activity.get(c.nodeId)
    const sent = row?.sent_command && row.sent_at !== null ? { command: row.sent_command, at: row.sent_at } : null
    const activeAt = Math.max(row?.active_at ?? now, this.#lastTaskEndedAt.get(c.nodeId) ?? this.#startedAt)
    return { nodeId: c.nodeId, state: c.state, slots: c.slots, busy: c.busy, cordoned: this.#cordoned.has(c.nodeId), activeAt, sent }
  }

  #put(row: ActivityRow): void {
    this.#activity.set(row.node_id, row)
    this.#store.putActivity(row)
  }
}
