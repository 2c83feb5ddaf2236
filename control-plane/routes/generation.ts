import { Hono } from 'hono'
import type { Context } from 'hono'
import { ChatCompletionRequest, CompletionRequest } from '../../protocol/index.ts'
import type { GenerationEndpoint, Priority } from '../../protocol/index.ts'
import { readJson } from '../middleware/validate-json.ts'
import { answerGeneration } from '../answer/answer-task.ts'
import type { InferenceEnv, TextGeneration } from '../answer/answer-task.ts'

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

/** `POST /v1/chat/completions` and `POST /v1/completions`, OpenAI-compatible. */
export const generationRoutes = new Hono<InferenceEnv>()
  .post('/v1/chat/completions', async (c) => answerGeneration(c, await readGeneration(c, 'chat')))
  .post('/v1/completions', async (c) => answerGeneration(c, await readGeneration(c, 'completions')))
