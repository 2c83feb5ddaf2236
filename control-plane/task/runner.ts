import { LlorchError } from '../../protocol/index.ts'
import type { Dispatch, Priority, TaskEvent, Usage } from '../../protocol/index.ts'
import type { Bindings } from '../env.ts'
import { logError, logEvent } from '../log.ts'
import { withDeadlines } from './event-deadlines.ts'
import { carriesOutput, decodeTaskEvents } from './event-stream.ts'
import type { Generation } from './generation.ts'
import type { AdmissionRequest, AdmissionResult, Grant, RetryOf, TaskOutcome } from './grant.ts'

/** Times a task is placed again after its node or engine failed before its first token. */
export const MAX_FAILOVERS = 3

export interface TaskRequest {
  env: Bindings
  taskId: string
  poolId: string
  /** The client's choice; the pool's default when it made none. */
  priority: Priority | undefined
  /** Whose usage the task counts to. */
  apiKeyId: string | null
  generation: Generation
  /** The request's `X-Request-Id`, carried into the task's log events. */
  requestId?: string
  /** Keeps work that must finish (the slot release) running after the response is sent. */
  waitUntil(promise: Promise<unknown>): void
}

/** A task placed on a replica, whose events can be read once. */
export interface RunningTask {
  taskId: string
  events: AsyncIterable<TaskEvent>
  /** Stops the task on its node and gives its slot back; safe after the end too. */
  cancel(): Promise<void>
}

function admissionError(result: Extract<AdmissionResult, { ok: false }>): LlorchError {
  const { code, message, retryAfterSeconds } = result.error
  return new LlorchError(code, message, retryAfterSeconds !== undefined ? { retryAfterSeconds } : {})
}

function dispatchOf(grant: Grant, generation: Generation): Dispatch {
  return { type: 'dispatch', task_id: grant.taskId, pool: grant.poolId, deadline_ms: grant.runTimeoutMs, ...generation }
}

function outcomeOf(last: TaskEvent, tokensSeen: boolean): TaskOutcome {
  if (last.kind === 'end') return 'completed'
  if (last.kind === 'error' && last.code === 'cancelled') return 'cancelled'
  return tokensSeen ? 'failed' : 'failed_before_start'
}

/**
 * Admits a task, places it on a replica and relays its events. A node or engine failure before
 * the first token sends the task back to the head of its queue to be placed again, invisibly;
 * after the first token the client sees a retriable error event.
 *
 * This is the one owner of the task's slot: every attempt it is granted ends in exactly one
 * `release` (or in the retry admission that takes the slot back), however the events end.
 */
export async function startTask(request: TaskRequest): Promise<RunningTask> {
  const { env, taskId } = request
  const pool = env.POOLS.getByName(request.poolId)
  const admission: AdmissionRequest = {
    taskId,
    priority: request.priority,
    apiKeyId: request.apiKeyId,
  }
  const admit = async (retryOf?: AdmissionRequest['retryOf']): Promise<Grant> => {
    const asked = retryOf ? { ...admission, retryOf } : admission
    let result: AdmissionResult
    try {
      result = await pool.admit(asked)
    } catch (error) {
      // A PoolObject restart drops waiting calls; the queued row survives, so asking again rejoins it.
      logEvent('task.admit_retry', { request_id: request.requestId, task: taskId, pool: request.poolId, error: String(error) })
      result = await pool.admit(asked)
    }
    if (!result.ok) throw admissionError(result)
    logEvent('task.granted', { request_id: request.requestId, task: taskId, pool: request.poolId, node: result.grant.nodeId, key: request.apiKeyId, attempt: result.grant.attempt })
    return result.grant
  }

  const askedAt = Date.now()
  let firstTokenAt: number | null = null
  let grant = await admit()
  /** Whether the current attempt still holds its slot. */
  let holding = true
  /**
   * The retry admission takes the failed attempt's slot back itself, and answers the next grant;
   * null when it refused to place the task only elsewhere (the failed attempt still holds its slot).
   */
  const admitAgain = async (retryOf: RetryOf): Promise<Grant | null> => {
    holding = false
    try {
      grant = await admit(retryOf)
    } catch (error) {
      if (retryOf.elsewhereOnly && error instanceof LlorchError && error.code === 'no_replica') {
        holding = true
        return null
      }
      throw error
    }
    holding = true
    return grant
  }
  const node = () => env.NODES.getByName(grant.nodeId)
  const release = (outcome: TaskOutcome, usage: Usage | null = null) => {
    if (!holding) return
    holding = false
    const { attempt } = grant
    const report = { usage, ttftMs: firstTokenAt === null ? null : firstTokenAt - askedAt }
    logEvent('task.released', { request_id: request.requestId, task: taskId, pool: grant.poolId, node: grant.nodeId, key: request.apiKeyId, attempt, outcome, ttft_ms: report.ttftMs, prompt_tokens: usage?.prompt_tokens, completion_tokens: usage?.completion_tokens })
    request.waitUntil(pool.release(taskId, attempt, outcome, report).catch((error: unknown) => logError('task.release_failed', { task: taskId, attempt, error: String(error) })))
  }

  async function* events(): AsyncGenerator<TaskEvent> {
    let failovers = 0
    let tokensSeen = false
    try {
      for (;;) {
        const stream = await node().run(grant, dispatchOf(grant, request.generation))
        let failed: Extract<TaskEvent, { kind: 'error' }> | null = null
        const deadlines = { firstTokenMs: grant.firstTokenTimeoutMs, idleMs: grant.idleTimeoutMs }
        for await (const event of withDeadlines(decodeTaskEvents(stream), deadlines)) {
          // The engine request is stopped either way; what follows depends on whether tokens flowed.
          if (event.kind === 'error' && event.code === 'deadline_exceeded') void node().cancel(taskId)
          if (carriesOutput(event)) {
            tokensSeen = true
            firstTokenAt ??= Date.now()
          }
          if (event.kind === 'error' && event.retriable && !tokensSeen && failovers < MAX_FAILOVERS) {
            failed = event
            break
          }
          if (event.kind === 'end' || event.kind === 'error') release(outcomeOf(event, tokensSeen), event.kind === 'end' ? event.usage : null)
          yield event
          if (event.kind === 'end' || event.kind === 'error') return
        }
        if (!failed) {
          const lost: TaskEvent = { kind: 'error', code: 'node_lost', message: 'the task stream ended without an end event', retriable: true }
          release(outcomeOf(lost, tokensSeen))
          yield lost
          return
        }
        failovers += 1
        logEvent('task.failover', { request_id: request.requestId, task: taskId, pool: grant.poolId, node: grant.nodeId, attempt: grant.attempt, code: failed.code, failovers })
        // A silent engine is still up: the task goes elsewhere, or the client gets the deadline.
        const elsewhereOnly = failed.code === 'deadline_exceeded'
        const retried = await admitAgain({ attempt: grant.attempt, nodeId: grant.nodeId, elsewhereOnly })
        if (!retried) {
          release(outcomeOf(failed, tokensSeen))
          yield failed
          return
        }
      }
    } finally {
      release('cancelled')
    }
  }

  return {
    taskId,
    events: events(),
    async cancel() {
      if (!holding) return
      await node().cancel(taskId)
      release('cancelled')
    },
  }
}
