import type { Context } from 'hono'
import type { GenerationEndpoint, Priority } from '../../protocol/index.ts'
import type { Generation } from '../task/generation.ts'
import { setRateLimitHeaders, startInferenceTask } from './inference-task.ts'
import type { InferenceEnv } from './inference-task.ts'
import { withFirstTokenWaits } from './first-token-wait.ts'
import { collectCompletion, collectEmbeddings, readUntilFirstOutput, sseStream } from './openai-stream.ts'
import { answerWhole, whileClientWaits } from './whole-reply.ts'

export { affinityKeyOf } from './affinity-key.ts'
export { assertKnownModel, modelNotFound } from './inference-task.ts'
export type { InferenceEnv } from './inference-task.ts'

/** The generation requests, chat or completions (embeddings have their own answer). */
export type TextGeneration = Extract<Generation, { endpoint: GenerationEndpoint }>
type EmbeddingsBody = Extract<Generation, { endpoint: 'embeddings' }>['body']

const ID_PREFIX = { chat: 'chatcmpl-', completions: 'cmpl-' } as const satisfies Record<GenerationEndpoint, string>

const SSE_HEADERS = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' } as const

/**
 * Runs a chat or completions request as a task and answers it as OpenAI does: an SSE stream of
 * chunks when it asked for one (its place in the queue shown while it waits), else one JSON reply.
 * A task that fails before any output is answered with its HTTP status.
 */
export async function answerGeneration(
  c: Context<InferenceEnv>,
  { generation, priority }: { generation: TextGeneration; priority: Priority | undefined },
): Promise<Response> {
  const { body } = generation
  const task = await startInferenceTask(c, { generation, priority, queueUpdates: body.stream === true })
  const iterator = task.events[Symbol.asyncIterator]()
  const identity = {
    id: `${ID_PREFIX[generation.endpoint]}${task.taskId}`,
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    endpoint: generation.endpoint,
  }
  if (!body.stream) return answerWhole(c, task, (onOutput) => collectCompletion(identity, iterator, onOutput))
  const streamed = withFirstTokenWaits(iterator)
  const first = await whileClientWaits(c, task, () => readUntilFirstOutput(streamed))
  setRateLimitHeaders(c, task)
  const includeUsage = body.stream_options?.include_usage === true
  return c.body(sseStream({ identity, task, iterator: streamed, first, includeUsage }), 200, { ...SSE_HEADERS, Connection: 'keep-alive' })
}

/** Runs an embeddings request as a task and answers the engine's vectors as one JSON reply. */
export async function answerEmbeddings(
  c: Context<InferenceEnv>,
  { body, priority }: { body: EmbeddingsBody; priority: Priority | undefined },
): Promise<Response> {
  const task = await startInferenceTask(c, { generation: { endpoint: 'embeddings', body }, priority, queueUpdates: false })
  const iterator = task.events[Symbol.asyncIterator]()
  return answerWhole(c, task, (onOutput) => collectEmbeddings(body.model, iterator, onOutput))
}

/**
 * Answers a native task's event stream (built by its TaskObject). A task that ended with every
 * event already read is a 204, which tells `EventSource` to stop reconnecting.
 */
export function answerTaskEvents(c: Context<InferenceEnv>, stream: ReadableStream<Uint8Array> | null): Response {
  if (!stream) return c.body(null, 204)
  return c.body(stream, 200, { ...SSE_HEADERS, 'X-Accel-Buffering': 'no' })
}
