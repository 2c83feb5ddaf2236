import { Hono } from 'hono'
import type { Context } from 'hono'
import { ChatCompletionRequest, CompletionRequest } from '../../protocol/index.ts'
import type { GenerationEndpoint, Priority } from '../../protocol/index.ts'
import { readJson } from '../middleware/validate-json.ts'
import type { Generation } from '../task/generation.ts'
import { collectCompletion, readUntilFirstOutput, sseStream } from '../answer/openai-stream.ts'
import { setRateLimitHeaders, startInferenceTask } from '../answer/inference-task.ts'
import type { InferenceEnv } from '../answer/inference-task.ts'
import { answerWhole, whileClientWaits } from '../answer/whole-reply.ts'

/** The generation requests, chat or completions (embeddings have their own route). */
type TextGeneration = Extract<Generation, { endpoint: GenerationEndpoint }>

const ID_PREFIX = { chat: 'chatcmpl-', completions: 'cmpl-' } as const satisfies Record<GenerationEndpoint, string>

/**
 * Reads the body of either route. `priority` is llorch's own field: it orders the queue and is
 * taken off here, once, so that the engine never sees it.
 */
async function readGeneration(c: Context<InferenceEnv>, endpoint: GenerationEndpoint): Promise<{ generation: TextGeneration; priority: Priority | undefined }> {
  if (endpoint === 'chat') {
    const { priority, ...body } = await readJson(c, ChatCompletionRequest)
    return { generation: { endpoint, body }, priority }
  }
  const { priority, ...body } = await readJson(c, CompletionRequest)
  return { generation: { endpoint, body }, priority }
}

/** One handler for both OpenAI generation routes; only the body schema and chunk shapes differ. */
async function generate(c: Context<InferenceEnv>, endpoint: GenerationEndpoint): Promise<Response> {
  const request = await readGeneration(c, endpoint)
  const { body } = request.generation
  const task = await startInferenceTask(c, { ...request, queueUpdates: body.stream === true })
  const iterator = task.events[Symbol.asyncIterator]()
  const identity = { id: `${ID_PREFIX[endpoint]}${task.taskId}`, created: Math.floor(Date.now() / 1000), model: body.model, endpoint }

  if (!body.stream) return answerWhole(c, task, (onOutput) => collectCompletion(identity, iterator, onOutput))

  const first = await whileClientWaits(c, task, () => readUntilFirstOutput(iterator))
  setRateLimitHeaders(c, task)
  const includeUsage = body.stream_options?.include_usage === true
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
