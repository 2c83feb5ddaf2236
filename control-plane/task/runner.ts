import { LlorchError, refusalError } from '../../protocol/index.ts'
import type { ErrorCode, KeyLimits, MissedDeadline, Priority, TaskEvent, Usage } from '../../protocol/index.ts'
import type { Bindings } from '../runtime/env.ts'
import { taskLease } from '../limits/key-lease.ts'
import { countDispatch } from '../runtime/cost-counts.ts'
import { logError, logEvent } from '../runtime/log.ts'
import { dispatchOf } from '../pool/dispatch-frame.ts'
import { withDeadlines } from './event-deadlines.ts'
import { carriesOutput, decodeTaskEvents } from './event-stream.ts'
import type { Generation } from './generation.ts'
import type { AdmissionRequest, AdmissionResult, Grant, RetryOf, TaskOutcome } from '../pool/grant.ts'
import type { TaskProgress } from './task-progress.ts'

/** Times a task is placed again after its node or engine failed before its first token. */
export const MAX_FAILOVERS = 3
/** How often a task waiting for a slot asks where it stands, when its reader shows that. */
export const QUEUE_STANDING_POLL_MS = 1_000

/** Refusals of a task that had been queued (and counted against its key's limits). */
const LEFT_THE_QUEUE: ReadonlySet<ErrorCode> = new Set(['queue_timeout', 'cancelled', 'task_expired'])

const CANCELLED: TaskEvent = { kind: 'error', code: 'cancelled', message: 'the task was cancelled', retriable: false }

export interface TaskRequest {
  env: Bindings
  taskId: string
  poolId: string
  /** The client's choice; the pool's default when it made none. */
  priority: Priority | undefined
  /** Whose usage the task counts to. */
  apiKeyId: string | null
  /** That key's own limits, as its credential was cached. */
  keyLimits?: KeyLimits
  /** Tasks with the same key go to the same replica while it has a free slot. */
  affinityKey?: string
  /** A batch line: it ends `preempted` when an interactive task needs its slot (see `AdmissionRequest`). */
  preemptible?: boolean
  generation: Generation
  /** The request's `X-Request-Id`, carried into the task's log events. */
  requestId?: string
  /** While the task waits for a slot, yield where it stands every `QUEUE_STANDING_POLL_MS`. */
  queueUpdates?: boolean
  /** The task was enqueued ahead of its runner (a native task), with what admission said of its key's limits. */
  enqueued?: { rateLimitHeaders: Record<string, string> | undefined }
  /** Keeps work that must finish (the slot release) running after the response is sent. */
  waitUntil(promise: Promise<unknown>): void
}

/** A task placed on a replica, whose events can be read once. */
export interface RunningTask {
  taskId: string
  /** The key's `x-ratelimit-*` state at admission; empty before admission answered or when no limit applies. */
  readonly rateLimitHeaders: Record<string, string>
  /** Admission happens at the first read: a refusal (queue full, no replica) is thrown from it. */
  events: AsyncIterable<TaskProgress>
  /** Takes the task out of the queue, or stops it on its node and gives its slot back; safe after the end too. */
  cancel(): Promise<void>
}

/** The admission request of a task, for `PoolObject.admit` and `enqueue`. */
export function admissionOf(request: Pick<TaskRequest, 'taskId' | 'priority' | 'apiKeyId' | 'keyLimits' | 'affinityKey' | 'preemptible'>): AdmissionRequest {
  return {
    taskId: request.taskId,
    priority: request.priority,
    apiKeyId: request.apiKeyId,
    ...(request.keyLimits ? { keyLimits: request.keyLimits } : {}),
    ...(request.affinityKey !== undefined ? { affinityKey: request.affinityKey } : {}),
    ...(request.preemptible ? { preemptible: true } : {}),
  }
}

function outcomeOf(last: TaskEvent, tokensSeen: boolean): TaskOutcome {
  if (last.kind === 'end') return 'completed'
  if (last.kind === 'error' && last.code === 'cancelled') return 'cancelled'
  return tokensSeen ? 'failed' : 'failed_before_start'
}

/** Resolves after the work queued now (the client's write of the event just handed on) has run. */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

const TICK = Symbol('tick')
const tick = (ms: number) => new Promise<typeof TICK>((resolve) => setTimeout(() => resolve(TICK), ms))

/**
 * Admits a task, places it on a replica and relays its events. A node or engine failure before
 * the first token sends the task back to the head of its queue to be placed again, invisibly;
 * after the first token the client sees a retriable error event.
 *
 * This is the one owner of the task's slot: every attempt it is granted ends in exactly one
 * `release` (or in the retry admission that takes the slot back), however the events end.
 */
export function startTask(request: TaskRequest): RunningTask {
  const { env, taskId } = request
  const pool = env.POOLS.getByName(request.poolId)
  const admission = admissionOf(request)
  const lease = taskLease(env, { apiKeyId: request.apiKeyId, taskId, waitUntil: request.waitUntil })
  // A native task was counted against its key's limits when it was enqueued.
  if (request.enqueued) lease.admitted(request.enqueued.rateLimitHeaders)
  const admitOnce = async (asked: AdmissionRequest): Promise<AdmissionResult> => {
    try {
      return await pool.admit(asked)
    } catch (error) {
      // A PoolObject restart drops waiting calls; the queued row survives, so asking again rejoins it.
      logEvent('task.admit_retry', { request_id: request.requestId, task: taskId, pool: request.poolId, error: String(error) })
      lease.rejoined()
      return pool.admit(asked)
    }
  }
  /** Waits for the grant, yielding where the task stands meanwhile when asked to. */
  async function* admit(retryOf?: RetryOf): AsyncGenerator<TaskProgress, Grant> {
    waiting = true
    // A first admission carries the request: granted at once, the PoolObject dispatches it to the node itself.
    const answer = admitOnce(retryOf ? { ...admission, retryOf } : { ...admission, generation: request.generation })
    let result: AdmissionResult | typeof TICK = request.queueUpdates ? TICK : await answer
    while (result === TICK) {
      result = await Promise.race([answer, tick(QUEUE_STANDING_POLL_MS)])
      if (result !== TICK) break
      const standing = await pool.standing(taskId).catch(() => null)
      if (standing) yield { kind: 'queued', standing }
    }
    waiting = false
    if (!result.ok) {
      // A task that left the queue was counted against its key; one refused at the door was not.
      if (LEFT_THE_QUEUE.has(result.error.code)) lease.settle(null)
      else lease.admitted(undefined)
      throw refusalError(result)
    }
    lease.admitted(result.rateLimitHeaders)
    dispatchedByPool = result.dispatched === true
    grant = result.grant
    holding = true
    return result.grant
  }

  const askedAt = Date.now()
  let firstTokenAt: number | null = null
  let grant: Grant | null = null
  /** Whether the PoolObject sent the current attempt's dispatch: the Worker then only claims its events. */
  let dispatchedByPool = false
  /** Whether an admission call is waiting for a slot. */
  let waiting = false
  /** Whether the current attempt holds its slot. */
  let holding = false
  /** Whether the client asked to stop: a grant that arrives after that is given back unused. */
  let cancelled = false
  /**
   * The retry admission takes the failed attempt's slot back itself, and answers the next grant;
   * null when it refused to place the task only elsewhere (the failed attempt still holds its slot).
   */
  async function* admitAgain(retryOf: RetryOf): AsyncGenerator<TaskProgress, Grant | null> {
    holding = false
    try {
      return yield* admit(retryOf)
    } catch (error) {
      if (retryOf.elsewhereOnly && error instanceof LlorchError && error.code === 'no_replica') {
        holding = true
        return null
      }
      throw error
    }
  }
  const node = (placed: Grant) => env.NODES.getByName(placed.nodeId)
  const stopMissed = (placed: Grant, missed: MissedDeadline): Promise<void> =>
    node(placed)
      .cancel(taskId, missed)
      .catch((error: unknown) => logError('task.cancel_failed', { task: taskId, node: placed.nodeId, error: String(error) }))
  const release = (outcome: TaskOutcome, usage: Usage | null = null): Promise<void> => {
    if (!holding || !grant) return Promise.resolve()
    holding = false
    const { attempt } = grant
    const { poolId, nodeId } = grant
    const report = { usage, ttftMs: firstTokenAt === null ? null : firstTokenAt - askedAt }
    lease.settle(usage)
    // The slot is given back (and the line logged) once the event that ended the task went on to the client.
    const released = nextTurn().then(() => {
      logEvent('task.released', {
        request_id: request.requestId,
        task: taskId,
        pool: poolId,
        node: nodeId,
        key: request.apiKeyId,
        attempt,
        outcome,
        ttft_ms: report.ttftMs,
        prompt_tokens: usage?.prompt_tokens,
        completion_tokens: usage?.completion_tokens,
      })
      return pool
        .release(taskId, attempt, outcome, report)
        .catch((error: unknown) => logError('task.release_failed', { task: taskId, attempt, error: String(error) }))
    })
    request.waitUntil(released)
    return released
  }

  async function* events(): AsyncGenerator<TaskProgress> {
    let failovers = 0
    let tokensSeen = false
    try {
      let placed = yield* admit()
      for (;;) {
        if (cancelled) {
          await release('cancelled')
          yield CANCELLED
          return
        }
        yield { kind: 'granted', nodeId: placed.nodeId, attempt: placed.attempt }
        // Worker → PoolObject → NodeObject, or Worker → PoolObject → Worker → NodeObject.
        countDispatch(dispatchedByPool ? 2 : 3)
        const stream = dispatchedByPool ? await node(placed).claim(placed) : await node(placed).run(placed, dispatchOf(placed, request.generation))
        // Logged once the dispatch is on its way, not before it.
        logEvent('task.granted', {
          request_id: request.requestId,
          task: taskId,
          pool: placed.poolId,
          node: placed.nodeId,
          key: request.apiKeyId,
          attempt: placed.attempt,
        })
        let failed: Extract<TaskEvent, { kind: 'error' }> | null = null
        const deadlines = { firstTokenMs: placed.firstTokenTimeoutMs, idleMs: placed.idleTimeoutMs }
        for await (const event of withDeadlines(decodeTaskEvents(stream), deadlines)) {
          // The engine request is stopped either way, before this stream is let go so that the agent
          // hears which deadline its engine missed (it restarts an engine that keeps missing them);
          // what follows depends on whether tokens flowed.
          if (event.kind === 'error' && event.code === 'deadline_exceeded') await stopMissed(placed, tokensSeen ? 'idle' : 'first_token')
          if (carriesOutput(event)) {
            tokensSeen = true
            firstTokenAt ??= Date.now()
          }
          // A preempted task's slot is someone else's now: it ends here, and its batch runs it again.
          if (event.kind === 'error' && event.retriable && event.code !== 'preempted' && !tokensSeen && failovers < MAX_FAILOVERS) {
            failed = event
            break
          }
          if (event.kind === 'end' || event.kind === 'error') void release(outcomeOf(event, tokensSeen), event.kind === 'end' ? event.usage : null)
          yield event
          if (event.kind === 'end' || event.kind === 'error') return
        }
        if (!failed) {
          const lost: TaskEvent = { kind: 'error', code: 'node_lost', message: 'the task stream ended without an end event', retriable: true }
          void release(outcomeOf(lost, tokensSeen))
          yield lost
          return
        }
        failovers += 1
        logEvent('task.failover', {
          request_id: request.requestId,
          task: taskId,
          pool: placed.poolId,
          node: placed.nodeId,
          attempt: placed.attempt,
          code: failed.code,
          failovers,
        })
        // A silent engine is still up: the task goes elsewhere, or the client gets the deadline.
        const elsewhereOnly = failed.code === 'deadline_exceeded'
        const retried = yield* admitAgain({ attempt: placed.attempt, nodeId: placed.nodeId, elsewhereOnly })
        if (!retried) {
          void release(outcomeOf(failed, tokensSeen))
          yield failed
          return
        }
        placed = retried
      }
    } finally {
      void release('cancelled')
      lease.settle(null)
    }
  }

  return {
    taskId,
    get rateLimitHeaders() {
      return lease.headers
    },
    events: events(),
    async cancel() {
      if (cancelled) return
      cancelled = true
      // Still queued: out of the queue, and the waiting admission answers `cancelled`.
      if (waiting && (await pool.cancelQueued(taskId))) return
      if (!holding || !grant) return
      await node(grant).cancel(taskId)
      await release('cancelled')
    },
  }
}
