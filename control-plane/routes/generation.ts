import { Hono } from 'hono'
import type { Context } from 'hono'
import { ChatCompletionRequest, CompletionRequest, LlorchError } from '../../protocol/index.ts'
import type { GenerationEndpoint, Priority, Usage } from '../../protocol/index.ts'
import type { AppEnv } from '../env.ts'
import { logError } from '../log.ts'
import type { AuthVariables } from '../middleware/bearer-auth.ts'
import { readJson } from '../middleware/validate-json.ts'
import { findPool } from '../registry/pools.ts'
import { recordUsage } from '../registry/usage.ts'
import type { Generation } from '../task/generation.ts'
import { collectCompletion, readUntilFirstOutput, sseStream } from '../task/openai-response.ts'
import { startTask } from '../task/runner.ts'

type InferenceEnv = AppEnv & { Variables: AuthVariables }

const ID_PREFIX = { chat: 'chatcmpl-', completions: 'cmpl-' } as const satisfies Record<GenerationEndpoint, string>

/**
 * Reads the body of either route. `priority` is llorch's own field: it orders the queue and is
 * taken off here, once, so that the engine never sees it.
 */
async function readGeneration(c: Context<InferenceEnv>, endpoint: GenerationEndpoint): Promise<{ generation: Generation; priority: Priority | undefined }> {
  if (endpoint === 'chat') {
    const { priority, ...body } = await readJson(c, ChatCompletionRequest)
    return { generation: { endpoint, body }, priority }
  }
  const { priority, ...body } = await readJson(c, CompletionRequest)
  return { generation: { endpoint, body }, priority }
}

/** One handler for both OpenAI generation routes; only the body schema and chunk shapes differ. */
async function generate(c: Context<InferenceEnv>, endpoint: GenerationEndpoint): Promise<Response> {
  const { generation, priority } = await readGeneration(c, endpoint)
  const { model } = generation.body
  const pool = await findPool(c.var.registry, model)
  if (!pool) throw new LlorchError('model_not_found', `the model "${model}" does not exist; GET /v1/models lists the served ones`, { param: 'model' })

  const taskId = crypto.randomUUID()
  const principal = c.var.principal
  const apiKeyId = principal.kind === 'api_key' ? principal.keyId : null
  const db = c.var.registry
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise)
  const onUsage = (usage: Usage) =>
    waitUntil(recordUsage(db, { apiKeyId, poolId: pool.id, taskId, usage }).catch((error: unknown) => logError('usage.write_failed', { task: taskId, error: String(error) })))

  const task = await startTask({
    env: c.env,
    taskId,
    poolId: pool.id,
    queueCapacity: pool.queueCapacity,
    priority: priority ?? pool.defaultPriority,
    generation,
    waitUntil,
  })
  const iterator = task.events[Symbol.asyncIterator]()
  const identity = { id: `${ID_PREFIX[endpoint]}${taskId}`, created: Math.floor(Date.now() / 1000), model, endpoint }

  if (!generation.body.stream) return c.json(await collectCompletion(identity, iterator, onUsage))

  const first = await readUntilFirstOutput(iterator)
  const includeUsage = generation.body.stream_options?.include_usage === true
  return c.body(sseStream({ identity, task, iterator, first, includeUsage, onUsage }), 200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  })
}

/** `POST /v1/chat/completions` and `POST /v1/completions`, OpenAI-compatible. */
export const generationRoutes = new Hono<InferenceEnv>()
  .post('/v1/chat/completions', (c) => generate(c, 'chat'))
  .post('/v1/completions', (c) => generate(c, 'completions'))
