import { LlorchError } from '../../protocol/index.ts'
import type { TaskEndpoint } from '../../protocol/index.ts'

/** Longest engine error body quoted in a task error. */
export const ENGINE_ERROR_MESSAGE_MAX_CHARS = 1_000

function engineMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body)
    const error: unknown = Reflect.get(Object(parsed), 'error')
    const message: unknown = typeof error === 'string' ? error : Reflect.get(Object(error), 'message')
    if (typeof message === 'string' && message !== '') return message.slice(0, ENGINE_ERROR_MESSAGE_MAX_CHARS)
  } catch {
    // not JSON: quote the text
  }
  return body.trim().slice(0, ENGINE_ERROR_MESSAGE_MAX_CHARS) || '(empty body)'
}

/** How engines say they lack a route: llama-server without `--embeddings` answers 501. */
const ROUTE_MISSING_STATUSES = new Set([404, 405, 501])

/** The typed error for an engine's non-200 answer to a request on `route`. */
export function engineHttpError({ pool, status, body, route }: { pool: string; status: number; body: string; route: TaskEndpoint }): LlorchError {
  const message = `engine of pool "${pool}" answered HTTP ${status}: ${engineMessage(body)}`
  const details = { engine_status: status }
  if (route === 'embeddings' && ROUTE_MISSING_STATUSES.has(status)) {
    return new LlorchError('invalid_request', `the model "${pool}" does not serve embeddings: ${message}`, { details, param: 'model' })
  }
  if (status === 400 || status === 422) return new LlorchError('invalid_request', message, { details })
  if (status === 413) return new LlorchError('payload_too_large', message, { details })
  if (status === 429 || status === 503) return new LlorchError('engine_unavailable', message, { details })
  return new LlorchError('engine_error', message, { details, retriable: status >= 500 })
}

/** The typed error for an `{"error":…}` object that an engine sent inside its event stream. */
export function engineStreamError({ pool, payload }: { pool: string; payload: string }): LlorchError {
  return new LlorchError('engine_error', `engine of pool "${pool}" reported an error mid-stream: ${engineMessage(payload)}`)
}
