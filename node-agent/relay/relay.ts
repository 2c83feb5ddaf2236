import type { IncomingMessage } from 'node:http'
import { createParser } from 'eventsource-parser'
import { ENGINE_PATHS, LlorchError } from '../../protocol/index.ts'
import type { EngineChatRequest, EngineCompletionRequest, GenerationEndpoint, TaskEvent, Usage } from '../../protocol/index.ts'
import type { EngineEndpoint } from '../supervisor/serving-engine.ts'
import { ChunkBatcher } from './chunk-batcher.ts'
import { deltasEvent, readChunk, usageOf } from './engine-chunk-reader.ts'
import { postToEngine } from './engine-request.ts'
import { abortError, errorEvent, toLlorchError } from './relay-errors.ts'

/**
 * Unsent engine data past which the engine connection is paused until the consumer catches up;
 * well under `MAX_FRAME_BYTES`, since everything pending may leave in one frame.
 */
export const RELAY_HIGH_WATER_BYTES = 1024 * 1024

export interface RelayOptions {
  endpoint: EngineEndpoint
  route: GenerationEndpoint
  body: EngineChatRequest | EngineCompletionRequest
  /** Aborting it cancels the engine request; a `LlorchError` reason becomes the task's error. */
  signal?: AbortSignal
}

/** The request sent to the engine: always streamed, always asking for usage, with its model name. */
export function engineRequestBody({ endpoint, body }: Pick<RelayOptions, 'endpoint' | 'body'>): Record<string, unknown> {
  return { ...body, model: endpoint.modelName, stream: true, stream_options: { ...(body.stream_options ?? {}), include_usage: true } }
}

/**
 * Runs one generation request against a ready engine and yields task events: `started` once the
 * engine accepted it, `deltas` batches of the engine's own chunks numbered by `seq`, then one
 * `end` or `error`. Never throws. Stopping the iteration early, or aborting `signal`, closes the
 * engine connection, which is how engines learn to stop generating.
 */
export async function* relay(options: RelayOptions): AsyncGenerator<TaskEvent> {
  const { endpoint, route } = options
  const controller = new AbortController()
  const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal
  let response: IncomingMessage | null = null
  const batcher = new ChunkBatcher({
    highWaterBytes: RELAY_HIGH_WATER_BYTES,
    onPressure: (paused) => (paused ? response?.pause() : response?.resume()),
  })
  const onAbort = () => batcher.finish({ kind: 'error', error: abortError(signal) })
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })

  let finishReason: string | null = null
  let usage: Usage | null = null
  const onData = (data: string) => {
    if (data === '[DONE]') return batcher.finish({ kind: 'end', finishReason, usage })
    const chunk = readChunk(data, endpoint.pool)
    if (chunk instanceof LlorchError) return batcher.finish({ kind: 'error', error: chunk })
    if (chunk.usage !== undefined && chunk.usage !== null) {
      const counted = usageOf(chunk.usage)
      if (counted) usage = counted
      else delete chunk.usage
    }
    for (const choice of chunk.choices) if (typeof choice.finish_reason === 'string' && choice.finish_reason !== '') finishReason = choice.finish_reason
    batcher.push(chunk, data.length)
  }

  const run = async () => {
    const url = `${endpoint.baseUrl}${ENGINE_PATHS[route]}`
    response = await postToEngine({ url, payload: JSON.stringify(engineRequestBody(options)), signal, pool: endpoint.pool, route }, 'text/event-stream')
    batcher.start()
    const parser = createParser({ onEvent: (event) => onData(event.data) })
    const stream = response
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => parser.feed(chunk))
    stream.on('error', () => {})
    stream.on('close', () => {
      if (batcher.finished) return
      if (stream.complete && finishReason !== null) return batcher.finish({ kind: 'end', finishReason, usage })
      const what = stream.complete ? 'ended the stream without a finish reason' : 'closed the connection mid-stream'
      batcher.finish({ kind: 'error', error: new LlorchError('engine_error', `engine of pool "${endpoint.pool}" ${what}`, { retriable: true }) })
    })
  }
  run().catch((error: unknown) => batcher.finish({ kind: 'error', error: signal.aborted ? abortError(signal) : toLlorchError(error) }))

  let seq = 0
  try {
    for await (const item of batcher.items()) {
      if (item.kind === 'started') yield { kind: 'started' }
      else if (item.kind === 'chunks') {
        const event = deltasEvent(item.chunks, seq, endpoint.pool)
        if (event instanceof LlorchError) {
          yield errorEvent(event, { outputSent: seq > 0 })
          return
        }
        seq += 1
        yield event
      } else if (item.kind === 'end') yield { kind: 'end', finish_reason: item.finishReason, usage: item.usage }
      else yield errorEvent(item.error, { outputSent: seq > 0 })
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    controller.abort(new LlorchError('cancelled', 'the consumer stopped reading'))
  }
}
