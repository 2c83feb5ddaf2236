import { z } from 'zod'

/** Every failure a client or an agent can act on has one of these codes. */
export const ErrorCode = z.enum([
  'invalid_request',
  'payload_too_large',
  'not_found',
  'method_not_allowed',
  'unauthorized',
  'forbidden',
  'upgrade_required',
  'conflict',
  'model_not_found',
  'queue_full',
  'rate_limit_rpm',
  'rate_limit_tpm',
  'rate_limit_concurrency',
  'token_budget_exhausted',
  'queue_timeout',
  'deadline_exceeded',
  'no_replica',
  'node_lost',
  'engine_error',
  'engine_unavailable',
  'cancelled',
  'preempted',
  'task_expired',
  'events_gone',
  'reader_replaced',
  'protocol_mismatch',
  'registry_unavailable',
  'internal_error',
])
export type ErrorCode = z.infer<typeof ErrorCode>

type HttpErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 426 | 429 | 500 | 502 | 503 | 504

interface ErrorTraits {
  readonly status: HttpErrorStatus
  readonly retriable: boolean
  /** The `type` field of OpenAI's error shape. */
  readonly openaiType: string
}

/** One table from code to HTTP status, retriability and OpenAI error type. */
export const ERROR_TRAITS = {
  invalid_request: { status: 400, retriable: false, openaiType: 'invalid_request_error' },
  payload_too_large: { status: 413, retriable: false, openaiType: 'invalid_request_error' },
  not_found: { status: 404, retriable: false, openaiType: 'invalid_request_error' },
  method_not_allowed: { status: 405, retriable: false, openaiType: 'invalid_request_error' },
  unauthorized: { status: 401, retriable: false, openaiType: 'authentication_error' },
  forbidden: { status: 403, retriable: false, openaiType: 'permission_error' },
  upgrade_required: { status: 426, retriable: false, openaiType: 'invalid_request_error' },
  conflict: { status: 409, retriable: false, openaiType: 'invalid_request_error' },
  model_not_found: { status: 404, retriable: false, openaiType: 'invalid_request_error' },
  queue_full: { status: 429, retriable: true, openaiType: 'rate_limit_error' },
  rate_limit_rpm: { status: 429, retriable: true, openaiType: 'rate_limit_error' },
  rate_limit_tpm: { status: 429, retriable: true, openaiType: 'rate_limit_error' },
  rate_limit_concurrency: { status: 429, retriable: true, openaiType: 'rate_limit_error' },
  // OpenAI answers an exhausted quota with this type; retrying before the period ends is pointless.
  token_budget_exhausted: { status: 429, retriable: false, openaiType: 'insufficient_quota' },
  queue_timeout: { status: 504, retriable: true, openaiType: 'server_error' },
  deadline_exceeded: { status: 504, retriable: true, openaiType: 'server_error' },
  no_replica: { status: 503, retriable: true, openaiType: 'server_error' },
  node_lost: { status: 503, retriable: true, openaiType: 'server_error' },
  engine_error: { status: 502, retriable: false, openaiType: 'server_error' },
  engine_unavailable: { status: 503, retriable: true, openaiType: 'server_error' },
  cancelled: { status: 409, retriable: false, openaiType: 'invalid_request_error' },
  /** A batch line's slot was given to an interactive task; its batch runs it again. */
  preempted: { status: 503, retriable: true, openaiType: 'server_error' },
  /** A native task nobody attached to in time: it gave its place back. */
  task_expired: { status: 410, retriable: false, openaiType: 'invalid_request_error' },
  /** Events a resuming reader asked for are no longer kept. */
  events_gone: { status: 410, retriable: false, openaiType: 'invalid_request_error' },
  /** Another reader of the same key took over a task's events. */
  reader_replaced: { status: 409, retriable: false, openaiType: 'invalid_request_error' },
  protocol_mismatch: { status: 400, retriable: false, openaiType: 'invalid_request_error' },
  registry_unavailable: { status: 503, retriable: true, openaiType: 'server_error' },
  internal_error: { status: 500, retriable: true, openaiType: 'server_error' },
} as const satisfies Record<ErrorCode, ErrorTraits>

/** `{"error":{"message","type","code","param"}}`, what `/v1/*` answers. */
export const OpenAIErrorBody = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    code: z.string().nullable(),
    param: z.string().nullable().optional(),
  }),
})
export type OpenAIErrorBody = z.infer<typeof OpenAIErrorBody>

/** `{"error":{"code","message"}}`, what every other route answers. */
export const NativeErrorBody = z.object({
  error: z.object({
    code: ErrorCode,
    message: z.string(),
    retriable: z.boolean().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
})
export type NativeErrorBody = z.infer<typeof NativeErrorBody>

export interface LlorchErrorOptions {
  /** The request field at fault, reported as OpenAI's `param`. */
  param?: string
  details?: Record<string, unknown>
  /** Overrides the code's default (an engine error is retriable before the first token). */
  retriable?: boolean
  /** Sent as `Retry-After` when the client should come back later (queue full). */
  retryAfterSeconds?: number
  /** Sent with the error response: the `x-ratelimit-*` state of a key turned away. */
  headers?: Record<string, string>
  cause?: unknown
}

/**
 * A failure with a code that clients and agents can act on. It renders itself in both error
 * shapes, the way Hono's `HTTPException` renders its response.
 */
export class LlorchError extends Error {
  override readonly name = 'LlorchError'
  readonly code: ErrorCode
  readonly status: HttpErrorStatus
  readonly retriable: boolean
  readonly param: string | undefined
  readonly details: Record<string, unknown> | undefined
  readonly retryAfterSeconds: number | undefined
  readonly headers: Record<string, string>

  constructor(code: ErrorCode, message: string, options: LlorchErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.status = ERROR_TRAITS[code].status
    this.retriable = options.retriable ?? ERROR_TRAITS[code].retriable
    this.param = options.param
    this.details = options.details
    this.retryAfterSeconds = options.retryAfterSeconds
    this.headers = options.headers ?? {}
  }

  toOpenAI(): OpenAIErrorBody {
    return {
      error: {
        message: this.message,
        type: ERROR_TRAITS[this.code].openaiType,
        code: this.code,
        param: this.param ?? null,
      },
    }
  }

  toNative(): NativeErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        retriable: this.retriable,
        ...(this.details ? { details: this.details } : {}),
      },
    }
  }
}
