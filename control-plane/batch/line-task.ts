import { LlorchError } from '../../protocol/index.ts'
import type { BatchEndpoint, KeyLimits } from '../../protocol/index.ts'
import { collectCompletion, collectEmbeddings } from '../answer/openai-stream.ts'
import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import { startTask } from '../task/runner.ts'
import { generationOf } from './line-validation.ts'
import type { LineRun } from './line-outcome.ts'

/** One run of a batch line as a task of class `batch`: its id (the output line's `request_id`), its result, and a way to stop it. */
export interface LineTask {
  requestId: string
  result: Promise<LineRun>
  cancel(): Promise<void>
}

const ID_PREFIX = { chat: 'chatcmpl-', completions: 'cmpl-' } as const

/** The error a failed run is stored with; anything but a `LlorchError` is a bug, logged and not shown. */
function failedRun(error: unknown, taskId: string): LineRun {
  const known = error instanceof LlorchError ? error : new LlorchError('internal_error', `internal error (task ${taskId})`)
  if (!(error instanceof LlorchError)) logError('batch.line_failed', { task: taskId, error: String(error) })
  return {
    ok: false,
    error: { code: known.code, message: known.message, retriable: known.retriable, retryAfterSeconds: known.retryAfterSeconds, body: known.toOpenAI() },
  }
}

/**
 * Runs one line through the same admission, placement, failover and slot release as a `/v1`
 * request of the same key, at `batch` priority, and reads its whole reply as the route would
 * answer `stream: false`.
 */
export function startLineTask({
  env,
  endpoint,
  bodyJson,
  apiKeyId,
  keyLimits,
  waitUntil,
}: {
  env: Bindings
  endpoint: BatchEndpoint
  /** The line's request body as validated and stored. */
  bodyJson: string
  apiKeyId: string
  keyLimits: KeyLimits
  waitUntil(promise: Promise<unknown>): void
}): LineTask {
  const taskId = crypto.randomUUID()
  const parsed = generationOf(endpoint, JSON.parse(bodyJson))
  if (!parsed.ok) {
    const refused = new LlorchError('invalid_request', 'the stored request no longer validates')
    return { requestId: taskId, result: Promise.resolve(failedRun(refused, taskId)), cancel: async () => {} }
  }
  const { generation } = parsed
  const task = startTask({ env, taskId, poolId: generation.body.model, priority: 'batch', preemptible: true, apiKeyId, keyLimits, generation, waitUntil })
  const iterator = task.events[Symbol.asyncIterator]()
  const read = async (): Promise<LineRun> => {
    if (generation.endpoint === 'embeddings') {
      const body = await collectEmbeddings(generation.body.model, iterator)
      return { ok: true, body, promptTokens: body.usage.prompt_tokens, completionTokens: 0 }
    }
    const identity = {
      id: `${ID_PREFIX[generation.endpoint]}${taskId}`,
      created: Math.floor(Date.now() / 1000),
      model: generation.body.model,
      endpoint: generation.endpoint,
    }
    const body = await collectCompletion(identity, iterator)
    return { ok: true, body, promptTokens: body.usage?.prompt_tokens ?? 0, completionTokens: body.usage?.completion_tokens ?? 0 }
  }
  return { requestId: taskId, result: read().catch((error: unknown) => failedRun(error, taskId)), cancel: () => task.cancel() }
}
