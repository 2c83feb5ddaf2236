import { Hono } from 'hono'
import type { Context } from 'hono'
import { ChatCompletionRequest, CompletionRequest, LlorchError, PoolId } from '../../protocol/index.ts'
import type { GenerationEndpoint, Priority } from '../../protocol/index.ts'
import type { AppEnv } from '../env.ts'
import type { AuthVariables } from '../middleware/bearer-auth.ts'
import { readJson } from '../middleware/validate-json.ts'
import type { Generation } from '../task/generation.ts'
import { collectCompletion, readUntilFirstOutput, sseStream } from '../task/openai-response.ts'
import { startTask } from '../task/runner.ts'

type InferenceEnv = AppEnv & { Variables: AuthVariables }

function modelNotFound(model: string): LlorchError {
  return new LlorchError('model_not_found', `the model "${model}" does not exist; GET /v1/models lists the served ones`, { param: 'model' })
}

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
  // A name no pool can have is not worth a Durable Object; every other one is the pool's to judge.
  if (!PoolId.safeParse(model).success) throw modelNotFound(model)

  const taskId = crypto.randomUUID()
  const principal = c.var.principal
  const task = await startTask({
    env: c.env,
    taskId,
    poolId: model,
    priority,
    apiKeyId: principal.kind === 'api_key' ? principal.keyId : null,
    generation,
    requestId: c.var.requestId,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
  }).catch((error: unknown) => {
    throw error instanceof LlorchError && error.code === 'model_not_found' ? modelNotFound(model) : error
  })
  const iterator = task.events[Symbol.asyncIterator]()
  const identity = { id: `${ID_PREFIX[endpoint]}${taskId}`, created: Math.floor(Date.now() / 1000), model, endpoint }

  if (!generation.body.stream) return c.json(await collectCompletion(identity, iterator))

  const first = await readUntilFirstOutput(iterator)
  const includeUsage = generation.body.stream_options?.include_usage === true
  return c.body(sseStream({ identity, task, iterator, first, includeUsage }), 200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  })
}

/** `POST /v1/chat/completions` and `POST /v1/completions`, OpenAI-compatible. */
export const generationRoutes = new Hono<InferenceEnv>()
  .post('/v1/chat/completions', (c) => generate(c, 'chat'))
  .post('/v1/completions', (c) => generate(c, 'completions'))
