import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { LlorchError } from '../../protocol/index.ts'
import type { TaskEndpoint } from '../../protocol/index.ts'
import { ENGINE_ERROR_MESSAGE_MAX_CHARS, engineHttpError } from './engine-http-error.ts'

/** Most of an error body read from an engine. */
export const ENGINE_ERROR_BODY_MAX_BYTES = 16 * 1024

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE'])

function errorCode(error: unknown): string | null {
  const code: unknown = Reflect.get(Object(error), 'code')
  return typeof code === 'string' ? code : null
}

async function readSome(response: IncomingMessage): Promise<string> {
  let text = ''
  response.setEncoding('utf8')
  for await (const chunk of response) {
    text += String(chunk)
    if (text.length >= ENGINE_ERROR_BODY_MAX_BYTES) break
  }
  response.destroy()
  return text
}

/** What the engine is asked for: a stream (generation) or one JSON reply (embeddings). */
export type EngineReplyType = 'text/event-stream' | 'application/json'

interface PostOptions {
  url: string
  payload: string
  signal: AbortSignal
  pool: string
  /** Which route this is, so that an engine that lacks it is told apart from one that failed. */
  route: TaskEndpoint
}

function postOnce({ url, payload, signal, pool, route }: PostOptions, expected: EngineReplyType): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // A fresh connection per request: llama-server closes keep-alive connections after a stream,
    // and a reused pooled socket can fail before the first byte.
    const req = request(url, {
      method: 'POST',
      agent: false,
      signal,
      headers: { 'content-type': 'application/json', accept: expected, 'content-length': Buffer.byteLength(payload) },
    })
    req.on('error', reject)
    req.on('response', (response) => {
      const type = response.headers['content-type'] ?? ''
      if (response.statusCode === 200 && type.includes(expected)) {
        resolve(response)
        return
      }
      readSome(response).then((body) => {
        if (response.statusCode !== 200) reject(engineHttpError({ pool, status: response.statusCode ?? 0, body, route }))
        else
          reject(
            new LlorchError(
              'engine_error',
              `engine of pool "${pool}" answered with ${type || 'no content type'} instead of ${expected}: ${body.slice(0, ENGINE_ERROR_MESSAGE_MAX_CHARS)}`,
            ),
          )
      }, reject)
    })
    req.end(payload)
  })
}

/**
 * POSTs a request to an engine and resolves with its response once it answered 200 with the
 * `expected` content type. Retries once on a fresh connection when the connection was reset
 * before any response byte. Rejects with a `LlorchError` (engine answers, unreachable engine) or
 * the abort reason.
 */
export async function postToEngine(options: PostOptions, expected: EngineReplyType): Promise<IncomingMessage> {
  const { url, signal, pool } = options
  for (let attempt = 0; ; attempt++) {
    try {
      return await postOnce(options, expected)
    } catch (error) {
      if (error instanceof LlorchError || signal.aborted) throw error
      const code = errorCode(error)
      if (attempt === 0 && code !== null && RESET_CODES.has(code)) continue
      const detail = code ?? (error instanceof Error ? error.message : String(error))
      throw new LlorchError('engine_unavailable', `cannot reach the engine of pool "${pool}" at ${url}: ${detail}`, { cause: error })
    }
  }
}

/** Reads a whole reply body, refusing one past `maxBytes`. */
export async function readReply(response: IncomingMessage, { maxBytes, pool }: { maxBytes: number; pool: string }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > maxBytes) {
      response.destroy()
      throw new LlorchError('payload_too_large', `engine of pool "${pool}" replied with more than ${maxBytes} bytes; ask for less (fewer inputs)`)
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
