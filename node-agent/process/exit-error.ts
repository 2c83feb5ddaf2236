import { LlorchError } from '../../protocol/index.ts'

/** Why the agent stopped an engine; null when it exited on its own. Recorded once. */
export type TerminationReason = 'drain' | 'reload' | 'start-timeout' | 'warm-up' | 'unhealthy' | 'shutdown'

export interface EngineExit {
  exitCode: number | null
  signal: string | null
  durationMs: number
  terminationReason: TerminationReason | null
  /** Set when the process could not be started at all (e.g. `spawn llama-server ENOENT`). */
  spawnError: string | null
}

export interface EngineExitErrorFields extends EngineExit {
  pool: string
  command: string
  /** Last lines of the engine's stdout and stderr. */
  tail: string
  startTimeoutMs?: number
}

const REASON_TEXT: Record<TerminationReason, string> = {
  drain: 'stopped by a drain',
  reload: 'stopped by a reload',
  'start-timeout': 'stopped because it did not become ready in time',
  'warm-up': 'stopped because loading the model failed',
  unhealthy: 'stopped because it stopped answering health checks',
  shutdown: 'stopped because the agent shut down',
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** One line: what ran and how it ended. */
function summarize(f: EngineExitErrorFields): string {
  const subject = `engine of pool "${f.pool}" (${f.command})`
  if (f.spawnError !== null) return `${subject} could not be started: ${f.spawnError}`
  if (f.terminationReason === 'start-timeout') {
    return `${subject} did not become ready within ${f.startTimeoutMs ?? '?'} ms (start timeout) and was stopped`
  }
  const how = f.signal !== null ? `was killed by ${f.signal}` : `exited with code ${f.exitCode ?? '?'}`
  const why = f.terminationReason === null ? '' : ` (${REASON_TEXT[f.terminationReason]})`
  return `${subject} ${how} after ${seconds(f.durationMs)}${why}`
}

/**
 * How an engine process ended, shaped like execa's result: command, exit code, signal, duration,
 * termination reason and the tail of its output. The message is built from those fields.
 */
export class EngineExitError extends Error {
  override readonly name = 'EngineExitError'
  readonly pool: string
  readonly command: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly durationMs: number
  readonly terminationReason: TerminationReason | null
  readonly spawnError: string | null
  readonly tail: string
  /** The first line of the message, without the output tail. */
  readonly summary: string

  constructor(fields: EngineExitErrorFields) {
    const summary = summarize(fields)
    super(fields.tail === '' ? summary : `${summary}\n--- last output ---\n${fields.tail}`)
    this.pool = fields.pool
    this.command = fields.command
    this.exitCode = fields.exitCode
    this.signal = fields.signal
    this.durationMs = fields.durationMs
    this.terminationReason = fields.terminationReason
    this.spawnError = fields.spawnError
    this.tail = fields.tail
    this.summary = summary
  }
}

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

/** The typed error for an engine's non-200 answer to a generation request. */
export function engineHttpError({ pool, status, body }: { pool: string; status: number; body: string }): LlorchError {
  const message = `engine of pool "${pool}" answered HTTP ${status}: ${engineMessage(body)}`
  const details = { engine_status: status }
  if (status === 400 || status === 422) return new LlorchError('invalid_request', message, { details })
  if (status === 413) return new LlorchError('payload_too_large', message, { details })
  if (status === 429 || status === 503) return new LlorchError('engine_unavailable', message, { details })
  return new LlorchError('engine_error', message, { details, retriable: status >= 500 })
}

/** The typed error for an `{"error":…}` object that an engine sent inside its event stream. */
export function engineStreamError({ pool, payload }: { pool: string; payload: string }): LlorchError {
  return new LlorchError('engine_error', `engine of pool "${pool}" reported an error mid-stream: ${engineMessage(payload)}`)
}
