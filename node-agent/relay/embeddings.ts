import { ENGINE_PATHS, EngineEmbeddingReply, LlorchError, describeIssues } from '../../protocol/index.ts'
import type { EmbeddingItem, EngineEmbeddingRequest, TaskEvent } from '../../protocol/index.ts'
import type { EngineEndpoint } from '../supervisor/serving-engine.ts'
import { postToEngine, readReply } from './engine-request.ts'
import { abortError, errorEvent, toLlorchError } from './relay-errors.ts'

/** Most of an engine's embeddings reply the agent reads; the Worker holds the whole reply in memory. */
export const MAX_EMBEDDING_REPLY_BYTES = 16 * 1024 * 1024
/** Vectors are sent in events of about this many bytes, well inside one frame. */
export const EMBEDDING_EVENT_BYTES = 1024 * 1024

export interface EmbeddingOptions {
  endpoint: EngineEndpoint
  body: EngineEmbeddingRequest
  /** Aborting it cancels the engine request; a `LlorchError` reason becomes the task's error. */
  signal?: AbortSignal
}

/** The vectors in slices of about `EMBEDDING_EVENT_BYTES` of JSON each, in the engine's order. */
export function sliceVectors(data: EmbeddingItem[], maxBytes = EMBEDDING_EVENT_BYTES): EmbeddingItem[][] {
  const slices: EmbeddingItem[][] = []
  let slice: EmbeddingItem[] = []
  let bytes = 0
  for (const item of data) {
    const size = JSON.stringify(item).length
    if (slice.length > 0 && bytes + size > maxBytes) {
      slices.push(slice)
      slice = []
      bytes = 0
    }
    slice.push(item)
    bytes += size
  }
  if (slice.length > 0 || slices.length === 0) slices.push(slice)
  return slices
}

/**
 * Runs one embeddings request against a ready engine, not streamed, and yields `started` once the
 * engine answered, the vectors as `embeddings` events (the rest of the reply with the first), then
 * `end` with usage; or one `error`. Never throws; aborting `signal` closes the engine connection.
 */
export async function* relayEmbeddings({ endpoint, body, signal: outer }: EmbeddingOptions): AsyncGenerator<TaskEvent> {
  const controller = new AbortController()
  const signal = outer ? AbortSignal.any([controller.signal, outer]) : controller.signal
  const { pool } = endpoint
  try {
    const url = `${endpoint.baseUrl}${ENGINE_PATHS.embeddings}`
    const response = await postToEngine(
      { url, payload: JSON.stringify({ ...body, model: endpoint.modelName }), signal, pool, route: 'embeddings' },
      'application/json',
    )
    yield { kind: 'started' }
    let json: unknown
    try {
      json = JSON.parse(await readReply(response, { maxBytes: MAX_EMBEDDING_REPLY_BYTES, pool }))
    } catch (error) {
      throw error instanceof LlorchError ? error : new LlorchError('engine_error', `engine of pool "${pool}" answered embeddings with a body that is not JSON`)
    }
    const reply = EngineEmbeddingReply.safeParse(json)
    if (!reply.success)
      throw new LlorchError('engine_error', `engine of pool "${pool}" answered embeddings in an unexpected shape: ${describeIssues(reply.error.issues)}`)
    const { data, ...rest } = reply.data
    let seq = 0
    for (const slice of sliceVectors(data)) {
      yield seq === 0 ? { kind: 'embeddings', seq, data: slice, reply: rest } : { kind: 'embeddings', seq, data: slice }
      seq += 1
    }
    const counted = rest.usage
    yield {
      kind: 'end',
      finish_reason: null,
      usage: counted ? { prompt_tokens: counted.prompt_tokens, completion_tokens: 0, total_tokens: counted.total_tokens } : null,
    }
  } catch (error) {
    // Every failure comes before the first vectors: the task may be placed again.
    yield errorEvent(signal.aborted ? abortError(signal) : toLlorchError(error), { outputSent: false })
  } finally {
    controller.abort(new LlorchError('cancelled', 'the consumer stopped reading'))
  }
}
