import { Hono } from 'hono'
import { EmbeddingRequest } from '../../protocol/index.ts'
import { readJson } from '../middleware/validate-json.ts'
import { collectEmbeddings } from '../answer/openai-stream.ts'
import { startInferenceTask } from '../answer/inference-task.ts'
import type { InferenceEnv } from '../answer/inference-task.ts'
import { answerWhole } from '../answer/whole-reply.ts'

/**
 * `POST /v1/embeddings`, OpenAI-compatible: queued and placed like a generation task (the same
 * pool queue and slots), run by the agent against its engine's `/v1/embeddings`, not streamed.
 */
export const embeddingRoutes = new Hono<InferenceEnv>().post('/v1/embeddings', async (c) => {
  const { priority, ...body } = await readJson(c, EmbeddingRequest)
  const task = await startInferenceTask(c, { generation: { endpoint: 'embeddings', body }, priority, queueUpdates: false })
  const iterator = task.events[Symbol.asyncIterator]()
  return answerWhole(c, task, (onOutput) => collectEmbeddings(body.model, iterator, onOutput))
})
