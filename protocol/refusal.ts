import { LlorchError } from './errors.ts'
import type { ErrorCode } from './errors.ts'

/**
 * Why a Durable Object said no, as a value: errors do not keep their class across RPC, so every
 * object answers a refusal with its code and the Worker turns it back into a `LlorchError`.
 */
export interface Refusal<Code extends ErrorCode = ErrorCode> {
  ok: false
  error: {
    code: Code
    message: string
    /** How long the client should wait before trying again (`Retry-After`). */
    retryAfterSeconds?: number
    /** Headers the answer carries, such as the key's `x-ratelimit-*` state. */
    headers?: Record<string, string>
    /** The request field the refusal is about. */
    param?: string
  }
}

export function refusal<Code extends ErrorCode>(
  code: Code,
  message: string,
  { retryAfterSeconds, headers, param }: { retryAfterSeconds?: number | undefined; headers?: Record<string, string> | undefined; param?: string } = {},
): Refusal<Code> {
  return {
    ok: false,
    error: {
      code,
      message,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
      ...(headers !== undefined ? { headers } : {}),
      ...(param !== undefined ? { param } : {}),
    },
  }
}

/** The error a refusal stands for, as the Worker answers it. */
export function refusalError({ error }: Refusal): LlorchError {
  return new LlorchError(error.code, error.message, {
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    ...(error.headers !== undefined ? { headers: error.headers } : {}),
    ...(error.param !== undefined ? { param: error.param } : {}),
  })
}
