import { BATCH_LINE_MAX_ATTEMPTS, ERROR_TRAITS } from '../../protocol/index.ts'
import type { BatchErrorCode, BatchOutputLine, ErrorCode, OpenAIErrorBody } from '../../protocol/index.ts'

/** A line the pool turned away for now (no replica, queue full, the key's rate) waits this long when the refusal names no time. */
export const BATCH_LINE_BACKOFF_MS = 1_000

/**
 * Refusals that say "not now" rather than "this line failed": the pool has no replica up (a
 * node lost, the control plane restarting while agents reconnect), its queue is full or the key
 * is at its rate. The line waits and tries again without spending an attempt; a batch that can
 * never run expires at the end of its window with its lines in the error file.
 */
const NOT_NOW: ReadonlySet<ErrorCode> = new Set(['no_replica', 'queue_full', 'queue_timeout', 'rate_limit_rpm', 'rate_limit_tpm', 'rate_limit_concurrency'])

/**
 * Failures of the serving side that a streaming client is not offered again when it saw tokens
 * before them (an engine that crashed or fell silent mid-reply, a node lost), but a batch line
 * is: its reply is stored only whole, so nobody saw any.
 */
const RUN_AGAIN: ReadonlySet<ErrorCode> = new Set(['engine_error', 'engine_unavailable', 'node_lost', 'deadline_exceeded'])

/** How one run of a line ended, as its task told it. */
export type LineRun =
  | { ok: true; body: unknown; promptTokens: number; completionTokens: number }
  | { ok: false; error: { code: ErrorCode; message: string; retriable: boolean; retryAfterSeconds?: number | undefined; body: OpenAIErrorBody } }

/** What becomes of the line. */
export type LineOutcome =
  | { kind: 'output'; usage: { promptTokens: number; completionTokens: number } }
  | { kind: 'error' }
  /** Back to pending; `spent`: the run counts as one of its attempts. */
  | { kind: 'retry'; spent: boolean; delayMs: number }
  /** The batch was stopped (cancel, expiry): the line never finished and ends as never run. */
  | { kind: 'stopped' }

/**
 * One finished run of a line, the `attempts` it has had (this one included): stored as output,
 * stored as an error, or run again (at most `BATCH_LINE_MAX_ATTEMPTS` runs that failed).
 */
export function lineOutcome(run: LineRun, { attempts, stopping }: { attempts: number; stopping: boolean }): LineOutcome {
  if (run.ok) return { kind: 'output', usage: { promptTokens: run.promptTokens, completionTokens: run.completionTokens } }
  const { code, retriable, retryAfterSeconds } = run.error
  if (stopping && (code === 'cancelled' || retriable)) return { kind: 'stopped' }
  // Its slot went to an interactive task: the line queues again at once, its attempt not spent.
  if (code === 'preempted') return { kind: 'retry', spent: false, delayMs: 0 }
  if (NOT_NOW.has(code)) return { kind: 'retry', spent: false, delayMs: retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : BATCH_LINE_BACKOFF_MS }
  if ((retriable || RUN_AGAIN.has(code)) && attempts < BATCH_LINE_MAX_ATTEMPTS) return { kind: 'retry', spent: true, delayMs: BATCH_LINE_BACKOFF_MS }
  return { kind: 'error' }
}

/** `batch_req_` and the task's id: what OpenAI's output lines carry as `id`. */
export const outputLineId = (requestId: string) => `batch_req_${requestId.replaceAll('-', '')}`

/** A line of the output file (its response) or of the error file (the error the route would have answered). */
export function outputLineOf({ customId, requestId, run }: { customId: string; requestId: string; run: LineRun }): BatchOutputLine {
  const response = run.ok
    ? { status_code: 200, request_id: requestId, body: run.body }
    : { status_code: ERROR_TRAITS[run.error.code].status, request_id: requestId, body: run.error.body }
  return { id: outputLineId(requestId), custom_id: customId, response, error: null }
}

/** A line of the error file for a line the batch never finished. */
export function unrunLineOf({
  customId,
  line,
  code,
}: {
  customId: string
  line: number
  code: Extract<BatchErrorCode, 'batch_expired' | 'batch_cancelled'>
}): BatchOutputLine {
  const why = code === 'batch_expired' ? 'the batch expired' : 'the batch was cancelled'
  return { id: outputLineId(`line-${line}`), custom_id: customId, response: null, error: { code, message: `${why} before this request finished` } }
}
