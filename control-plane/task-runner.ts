import { LlorchError } from '../protocol/index.ts'
import type { ChatCompletionRequest, CompletionRequest, Dispatch, GenerationEndpoint, Priority, TaskEvent } from '../protocol/index.ts'
import type { Bindings } from './env.ts'
import { logEvent } from './log.ts'
import { decodeTaskEvents } from './task-event-stream.ts'
import type { AdmissionResult, Grant } from './task-grant.ts'

/** How long a task may wait in its pool's queue for a slot. */
export const QUEUE_WAIT_DEADLINE_MS = 120_000
/** How long a task may run on an engine once dispatched. */
export const TASK_RUN_DEADLINE_MS = 10 * 60_000
/** Times a task is placed again after its node or engine failed before its first token. */
export const MAX_FAILOVERS = 3

export type GenerationBody = { endpoint: 'chat'; body: ChatCompletionRequest } | { endpoint: 'completions'; body: CompletionRequest }

export interface TaskRequest {
  env: Bindings
  taskId: string
  poolId: string
  queueCapacity: number
  priority: Priority
  generation: GenerationBody
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

async function admit(request: TaskRequest, requeued: boolean): Promise<Grant> {
  const { env, poolId, taskId } = request
  const pool = env.POOLS.get(env.POOLS.idFromName(poolId))
  const admission = {
    taskId,
    priority: request.priority,
    requeued,
    maxWaitMs: QUEUE_WAIT_DEADLINE_MS,
    queueCapacity: request.queueCapacity,
    endpoint: request.generation.endpoint,
  }
  let result: AdmissionResult
  try {
    result = await pool.admit(poolId, admission)
  } catch (error) {
    // A PoolObject restart drops waiting calls; the queued row survives, so asking again rejoins it.
    logEvent('task.admit_retry', { task: taskId, pool: poolId, error: String(error) })
    result = await pool.admit(poolId, admission)
  }
  if (!result.ok) throw admissionError(result)
  return result.grant
}

function dispatchOf(grant: Grant, generation: GenerationBody): Dispatch {
  const common = { type: 'dispatch' as const, task_id: grant.taskId, pool: grant.poolId, deadline_ms: TASK_RUN_DEADLINE_MS }
  return generation.endpoint === 'chat'
    ? { ...common, endpoint: 'chat', body: generation.body }
    : { ...common, endpoint: 'completions', body: generation.body }
}

/**
 * Admits a task, places it on a replica and relays its events. A node or engine failure before
 * the first token sends the task back to the head of its queue to be placed again, invisibly;
 * after the first token the client sees a retriable error event.
 */
export async function startTask(request: TaskRequest): Promise<RunningTask> {
  const { env, taskId } = request
  let grant = await admit(request, false)
  /** The task reached its end or error event: there is nothing left to cancel. */
  let ended = false
  const node = () => env.NODES.get(env.NODES.idFromName(grant.nodeId))

  async function* events(): AsyncGenerator<TaskEvent> {
    let failovers = 0
    let tokensSeen = false
    for (;;) {
      const stream = await node().run(grant, dispatchOf(grant, request.generation))
      let retry = false
      for await (const event of decodeTaskEvents(stream)) {
        if (event.kind === 'tokens') tokensSeen = true
        if (event.kind === 'error' && event.retriable && !tokensSeen && failovers < MAX_FAILOVERS) {
          failovers += 1
          logEvent('task.failover', { task: taskId, pool: grant.poolId, node: grant.nodeId, code: event.code, failovers })
          retry = true
          break
        }
        if (event.kind === 'end' || event.kind === 'error') ended = true
        yield event
        if (ended) return
      }
      if (!retry) {
        ended = true
        yield { kind: 'error', code: 'node_lost', message: 'the task stream ended without an end event', retriable: true }
        return
      }
      grant = await admit(request, true)
    }
  }

  return {
    taskId,
    events: events(),
    async cancel() {
      if (ended) return
      ended = true
      await node().cancel(taskId)
    },
  }
}
