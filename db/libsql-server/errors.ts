import type { HranaError } from './hrana-schema.ts'

/**
 * Error codes this server puts in Hrana errors besides the engine's own `SQLITE_*` codes. The
 * names follow sqld where sqld has one, so client code that branches on them works against both.
 */
export type ServerErrorCode =
  | 'SQL_NO_STATEMENT'
  | 'SQL_MANY_STATEMENTS'
  | 'ARGS_INVALID'
  | 'ARGS_BOTH_POSITIONAL_AND_NAMED'
  | 'SQL_NOT_FOUND'
  | 'SQL_ID_EXISTS'
  | 'SQL_STORE_TOO_MANY'
  | 'SQL_STORE_TOO_LARGE'
  | 'STREAM_CLOSED'
  | 'INTERNAL_ERROR'

/** Codes of whole-request failures, answered with an HTTP error status and a Hrana error body. */
export type HttpErrorCode =
  'BODY_INVALID' | 'BODY_TOO_LARGE' | 'BATON_INVALID' | 'STREAM_EXPIRED' | 'TOO_MANY_STREAMS' | 'UNAUTHORIZED' | 'NOT_FOUND' | 'INTERNAL_ERROR'

export const HTTP_STATUS = {
  BODY_INVALID: 400,
  BODY_TOO_LARGE: 413,
  BATON_INVALID: 400,
  STREAM_EXPIRED: 400,
  TOO_MANY_STREAMS: 503,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
} as const satisfies Record<HttpErrorCode, number>

export function hranaError(code: ServerErrorCode, message: string): HranaError {
  return { code, message }
}

/** What the `libsql` engine throws: a `SqliteError` whose `code` is the extended result code name. */
export function isEngineError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('SQLITE_')
}

/** Engine failures keep their SQLite code (`SQLITE_CONSTRAINT_UNIQUE`); anything else is internal. */
export function toHranaError(error: unknown): HranaError {
  if (isEngineError(error)) return { code: error.code, message: `SQLite error: ${error.message}` }
  const message = error instanceof Error ? error.message : String(error)
  return hranaError('INTERNAL_ERROR', `Internal error: ${message}`)
}
