import { setTimeout as sleep } from 'node:timers/promises'
import { isEngineError } from './errors.ts'

/**
 * Connections run with busy_timeout 0: the engine is synchronous, so SQLite's own busy wait would
 * block the event loop, and with it the stream that holds the write lock and would release it.
 * Instead a statement that meets SQLITE_BUSY is retried from a timer, with backoff, up to a limit.
 */
export const BUSY_RETRY_LIMIT_MS = 5_000
export const BUSY_RETRY_FIRST_DELAY_MS = 1
export const BUSY_RETRY_MAX_DELAY_MS = 50

/**
 * SQLITE_BUSY_SNAPSHOT is left out on purpose: a transaction whose read snapshot went stale can
 * never upgrade to a writer, so waiting would only delay the same error.
 */
const RETRIABLE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_RECOVERY', 'SQLITE_BUSY_TIMEOUT'])

export function isRetriableBusyError(error: unknown): boolean {
  return isEngineError(error) && RETRIABLE_CODES.has(error.code)
}

/** Any SQLITE_BUSY variant: SQLite keeps the failed statement active, ready to resume. */
export function isBusyError(error: unknown): boolean {
  return isEngineError(error) && error.code.startsWith('SQLITE_BUSY')
}

export interface BusyRetryOptions {
  limitMs?: number
  /** Stops retrying early, e.g. when the server closes. */
  signal?: AbortSignal
}

/** Runs `attempt` (synchronous engine work) until it returns, throws a non-busy error, or the limit passes. */
export async function retryWhileBusy<T>(attempt: () => T, options: BusyRetryOptions = {}): Promise<T> {
  const limitMs = options.limitMs ?? BUSY_RETRY_LIMIT_MS
  const deadline = performance.now() + limitMs
  let delayMs = BUSY_RETRY_FIRST_DELAY_MS
  for (;;) {
    try {
      return attempt()
    } catch (error) {
      const remainingMs = deadline - performance.now()
      if (!isRetriableBusyError(error) || remainingMs <= 0 || options.signal?.aborted) throw error
      await sleep(Math.min(delayMs, remainingMs))
      delayMs = Math.min(delayMs * 2, BUSY_RETRY_MAX_DELAY_MS)
    }
  }
}
