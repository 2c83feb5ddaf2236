import { LlorchError, MAX_ERROR_MESSAGE_CHARS } from '../../protocol/index.ts'
import type { TaskEvent } from '../../protocol/index.ts'

/** Why an aborted engine request stopped: the `LlorchError` its aborter gave, or a plain cancel. */
export function abortError(signal: AbortSignal): LlorchError {
  return signal.reason instanceof LlorchError ? signal.reason : new LlorchError('cancelled', 'the task was cancelled')
}

export function toLlorchError(error: unknown): LlorchError {
  return error instanceof LlorchError ? error : new LlorchError('engine_error', error instanceof Error ? error.message : String(error), { cause: error })
}

/** The task's last event; `retriable` only while nothing reached the client (the control plane may place it again). */
export function errorEvent(error: LlorchError, { outputSent }: { outputSent: boolean }): TaskEvent {
  return { kind: 'error', code: error.code, message: error.message.slice(0, MAX_ERROR_MESSAGE_CHARS), retriable: error.retriable && !outputSent }
}
