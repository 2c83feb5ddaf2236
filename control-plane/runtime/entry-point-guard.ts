import { countEntryPoint } from './cost-counts.ts'
import { logError } from './log.ts'

/**
 * Runs one entry point of a Durable Object (`fetch`, `alarm`, a WebSocket handler, an RPC method).
 * A failure is logged as `Class:name method:` with the error, then rethrown so the caller (or the
 * runtime, for an alarm) sees it; the object itself lives on for the next call.
 */
export async function guardEntryPoint<T>(where: { object: string; name: string | undefined; method: string }, work: () => T | Promise<T>): Promise<T> {
  countEntryPoint(`${where.object}.${where.method}`)
  try {
    return await work()
  } catch (error) {
    logError('object.entry_point_failed', {
      where: `${where.object}:${where.name ?? '(unnamed)'} ${where.method}:`,
      error: String(error),
      stack: error instanceof Error ? error.stack : undefined,
    })
    throw error
  }
}
