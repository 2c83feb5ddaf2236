/** Why the agent stopped an engine; null when it exited on its own. Recorded once. */
export type TerminationReason = 'drain' | 'reload' | 'start-timeout' | 'warm-up' | 'unhealthy' | 'hung' | 'shutdown'

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
  hung: 'stopped because it hung: its tasks got no tokens',
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
