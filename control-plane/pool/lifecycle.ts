import type { PoolPolicy, ReplicaState } from '../../protocol/index.ts'

/** A start or stop sent to a node counts as under way this long; after that it may be sent again. */
export const COMMAND_SETTLE_MS = 15_000

/** A replica as the lifecycle sees it: placement's view plus what the pool last asked of it. */
export interface LifecycleReplica {
  nodeId: string
  state: ReplicaState
  slots: number
  busy: number
  /** Cordoned for maintenance: never started, never placed on. */
  cordoned: boolean
  /** When it last became ready or ended a task (or the pool object started). */
  activeAt: number
  /** The last start or stop the pool sent it, and when. */
  sent: { command: 'preload' | 'drain'; at: number } | null
}

export interface LifecycleInput {
  policy: Pick<PoolPolicy, 'preload_mode' | 'idle_drain_ms' | 'scale_out_wait_ms'>
  replicas: readonly LifecycleReplica[]
  queued: number
  averageTaskMs: number
  /** Drained for maintenance: nothing starts until a preload. */
  maintenance: boolean
  /** A rolling reload is under way: it decides which replicas stop, idle drain waits. */
  rolling: boolean
  now: number
}

/** Which replicas to start and stop now, and when to look again (null: on the next event). */
export interface LifecyclePlan {
  start: string[]
  stop: string[]
  nextAt: number | null
}

function sentRecently(r: LifecycleReplica, command: 'preload' | 'drain', now: number): boolean {
  return r.sent?.command === command && now - r.sent.at < COMMAND_SETTLE_MS
}

/** Told to start and not started yet: counts as starting. */
function startPending(r: LifecycleReplica, now: number): boolean {
  return r.state === 'stopped' && sentRecently(r, 'preload', now)
}

/** Told to drain while it still reports ready: takes no new task. */
function stopPending(r: LifecycleReplica, now: number): boolean {
  return r.state === 'ready' && sentRecently(r, 'drain', now)
}

/** A replica the pool may have running: stopped and not cordoned, whether or not it was told to start already. */
export function mayStart(r: LifecycleReplica): boolean {
  return r.state === 'stopped' && !r.cordoned
}

/** A replica the pool may start: stopped, not cordoned, not already told to start. */
export function startable(r: LifecycleReplica, now: number): boolean {
  return mayStart(r) && !startPending(r, now)
}

/**
 * Whether lifting a cordon starts the node's replica at once: an `eager` pool wants its replicas
 * serving, and the cordon's drain is what stopped it; an `on-demand` one waits for a request.
 */
export function startsOnUncordon(
  r: LifecycleReplica,
  { policy, maintenance, now }: { policy: Pick<PoolPolicy, 'preload_mode'>; maintenance: boolean; now: number },
): boolean {
  return policy.preload_mode === 'eager' && !maintenance && startable(r, now)
}

/** How long the queue would take to drain on the ready slots, at the pool's average task time. */
export function predictedWaitMs({ queued, readySlots, averageTaskMs }: { queued: number; readySlots: number; averageTaskMs: number }): number {
  if (queued === 0) return 0
  if (readySlots === 0) return Infinity
  return (queued * averageTaskMs) / readySlots
}

/**
 * The pool's lifecycle decisions from its replica table, queue and policy:
 * - a queued task with no replica ready or starting starts one (on-demand start);
 * - a queue whose predicted wait exceeds `scale_out_wait_ms` starts one more stopped replica,
 *   one at a time (scale out);
 * - a ready replica with no task for `idle_drain_ms` is drained while the queue is empty (scale
 *   in); an `eager` pool keeps one ready, an `on-demand` one may go to zero.
 * Nothing starts while the pool is drained for maintenance, and nothing runs on a cordoned node.
 */
export function planLifecycle(input: LifecycleInput): LifecyclePlan {
  const { policy, replicas, queued, now } = input
  const plan: LifecyclePlan = { start: [], stop: [], nextAt: null }
  if (input.maintenance) return plan
  const later = (at: number) => {
    if (at > now) plan.nextAt = Math.min(plan.nextAt ?? Infinity, at)
  }
  for (const r of replicas) if (startPending(r, now) || stopPending(r, now)) later((r.sent?.at ?? now) + COMMAND_SETTLE_MS)

  const ready = replicas.filter((r) => !r.cordoned && r.state === 'ready' && !stopPending(r, now))
  const coming = replicas.filter((r) => !r.cordoned && (r.state === 'starting' || startPending(r, now)))
  const readySlots = ready.reduce((n, r) => n + r.slots, 0)
  if (queued > 0 && coming.length === 0) {
    const wait = predictedWaitMs({ queued, readySlots, averageTaskMs: input.averageTaskMs })
    const next = replicas.find((r) => startable(r, now))
    if (next && (readySlots === 0 || wait > policy.scale_out_wait_ms)) plan.start.push(next.nodeId)
  }

  const idleMs = policy.idle_drain_ms
  if (idleMs === null || input.rolling || queued > 0) return plan
  const keep = policy.preload_mode === 'eager' ? 1 : 0
  // Longest idle first, so an eager pool keeps the one that worked last.
  const idle = ready.filter((r) => r.busy === 0).sort((a, b) => a.activeAt - b.activeAt)
  let running = ready.length
  for (const r of idle) {
    if (running <= keep) break
    const dueAt = r.activeAt + idleMs
    if (dueAt > now) {
      later(dueAt)
      continue
    }
    plan.stop.push(r.nodeId)
    running -= 1
  }
  return plan
}

/**
 * The replica's state as placement should see it: under a maintenance drain no replica serves,
 * even one its agent started by itself; a cordoned node's replica neither; one told to drain
 * takes no new task even before its agent says so.
 */
export function placementState(r: LifecycleReplica, { maintenance, now }: { maintenance: boolean; now: number }): ReplicaState {
  if (r.state === 'failed' || r.state === 'lost') return r.state
  if (maintenance || r.cordoned) return 'stopped'
  if (stopPending(r, now)) return 'draining'
  return r.state
}
