import { Hono } from 'hono'
import { EmbeddingRequest } from '../../protocol/index.ts'
import { readJson } from '../middleware/validate-json.ts'
import { answerEmbeddings } from '../answer/answer-task.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'

/**
 * `POST /v1/embeddings`, OpenAI-compatible: queued and placed like a generation task (the same
 * pool queue and slots), run by the agent against its engine's `/v1/embeddings`, not streamed.
 */
export const embeddingRoutes = new Hono<InferenceEnv>().post('/v1/embeddings', async (c) => {
  const { priority, ...body } = await readJson(c, EmbeddingRequest)
  return answerEmbeddings(c, { body, priority })
})
