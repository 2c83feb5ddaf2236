import type { IncomingMessage } from 'node:http'
import { createParser } from 'eventsource-parser'
import { z } from 'zod'
import { ENGINE_PATHS, LlorchError, MAX_ERROR_MESSAGE_CHARS, Usage } from '../../protocol/index.ts'
import type { EngineChatRequest, EngineCompletionRequest, GenerationEndpoint, TaskEvent } from '../../protocol/index.ts'
import type { EngineEndpoint } from '../supervisor/serving-engine.ts'
import { engineStreamError } from './engine-http-error.ts'
import { postForStream } from './engine-request.ts'
import { TokenBatcher } from './token-batcher.ts'

/** A batch of text deltas is sent at most this long after its first character. */
export const TOKEN_FLUSH_INTERVAL_MS = 20
/** A batch is sent as soon as it holds this many characters. */
export const TOKEN_FLUSH_CHARS = 1_024
/** Unsent characters past which the engine connection is paused until the consumer catches up. */
export const RELAY_HIGH_WATER_CHARS = 256 * 1024

const Chunk = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        delta: z.looseObject({ content: z.string().nullish() }).nullish(),
        text: z.string().nullish(),
        finish_reason: z.string().min(1).nullish(),
      }),
    )
    .nullish(),
  usage: Usage.nullish().catch(null),
  error: z.unknown().optional(),
})

export interface RelayOptions {
  endpoint: EngineEndpoint
  route: GenerationEndpoint
  body: EngineChatRequest | EngineCompletionRequest
  /** Aborting it cancels the engine request; a `LlorchError` reason becomes the task's error. */
  signal?: AbortSignal
  flushIntervalMs?: number
  flushChars?: number
}

/** The request sent to the engine: always streamed, always asking for usage, with its model name. */
export function engineRequestBody({ endpoint, body }: Pick<RelayOptions, 'endpoint' | 'body'>): Record<string, unknown> {
  return { ...body, model: endpoint.modelName, stream: true, stream_options: { ...(body.stream_options ?? {}), include_usage: true } }
}

function abortError(signal: AbortSignal): LlorchError {
  return signal.reason instanceof LlorchError ? signal.reason : new LlorchError('cancelled', 'the task was cancelled')
}

function toLlorchError(error: unknown): LlorchError {
  return error instanceof LlorchError ? error : new LlorchError('engine_error', error instanceof Error ? error.message : String(error), { cause: error })
}

/**
 * Runs one generation request against a ready engine and yields task events: `started` once the
 * engine accepted it, `tokens` batches numbered by `seq`, then one `end` or `error`. Never throws.
 * Stopping the iteration early, or aborting `signal`, closes the engine connection, which is how
 * engines learn to stop generating.
 */
export async function* relay(options: RelayOptions): AsyncGenerator<TaskEvent> {
  const { endpoint, route } = options
  const controller = new AbortController()
  const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal
  let response: IncomingMessage | null = null
  const batcher = new TokenBatcher({
    flushIntervalMs: options.flushIntervalMs ?? TOKEN_FLUSH_INTERVAL_MS,
    flushChars: options.flushChars ?? TOKEN_FLUSH_CHARS,
    highWaterChars: RELAY_HIGH_WATER_CHARS,
    onPressure: (paused) => (paused ? response?.pause() : response?.resume()),
  })
  const onAbort = () => batcher.finish({ kind: 'error', error: abortError(signal) })
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })

  let finishReason: string | null = null
  let usage: Usage | null = null
  const onData = (data: string) => {
    if (data === '[DONE]') return batcher.finish({ kind: 'end', finishReason, usage })
    let json: unknown
    try {
      json = JSON.parse(data)
    } catch {
      return batcher.finish({ kind: 'error', error: new LlorchError('engine_error', `engine of pool "${endpoint.pool}" sent a data line that is not JSON`) })
    }
    const chunk = Chunk.safeParse(json)
    if (!chunk.success) return batcher.finish({ kind: 'error', error: new LlorchError('engine_error', `engine of pool "${endpoint.pool}" sent a chunk of unexpected shape`) })
    if (chunk.data.error !== undefined && chunk.data.error !== null) {
      return batcher.finish({ kind: 'error', error: engineStreamError({ pool: endpoint.pool, payload: data }) })
    }
    if (chunk.data.usage) usage = chunk.data.usage
    const choice = chunk.data.choices?.[0]
    if (!choice) return
    batcher.push((route === 'chat' ? choice.delta?.content : choice.text) ?? '')
    if (choice.finish_reason) finishReason = choice.finish_reason
  }

  const run = async () => {
    const url = `${endpoint.baseUrl}${ENGINE_PATHS[route]}`
    response = await postForStream({ url, payload: JSON.stringify(engineRequestBody(options)), signal, pool: endpoint.pool })
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
      else if (item.kind === 'text') yield { kind: 'tokens', seq: seq++, text: item.text }
      else if (item.kind === 'end') yield { kind: 'end', finish_reason: item.finishReason, usage: item.usage }
      else {
        const { code, message, retriable } = item.error
        yield { kind: 'error', code, message: message.slice(0, MAX_ERROR_MESSAGE_CHARS), retriable: retriable && seq === 0 }
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    controller.abort(new LlorchError('cancelled', 'the consumer stopped reading'))
  }
}
