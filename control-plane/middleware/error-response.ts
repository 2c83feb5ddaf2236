import type { Context } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { logError } from '../runtime/log.ts'
import { isRegistryUnavailable } from '../registry/registry-fetch.ts'

/** `/v1/*` speaks OpenAI's error shape; every other route the native one. */
export function isOpenAIPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/')
}

export function errorResponse(c: Context, error: LlorchError, headers: Record<string, string> = {}): Response {
  const body = isOpenAIPath(c.req.path) ? error.toOpenAI() : error.toNative()
  const extra: Record<string, string> = {}
  if (error.code === 'unauthorized') extra['WWW-Authenticate'] = 'Bearer'
  if (error.retryAfterSeconds !== undefined) extra['Retry-After'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)))
  return c.json(body, error.status, { ...error.headers, ...extra, ...headers })
}

/**
 * Renders any thrown value. A `LlorchError` renders itself; anything else is a bug, logged with
 * the request id and answered as a generic 500 that leaks nothing.
 */
export function renderError(err: unknown, c: Context): Response {
  if (err instanceof LlorchError) return errorResponse(c, err)
  if (isRegistryUnavailable(err)) {
    logError('request.registry_unavailable', { request_id: c.get('requestId'), path: c.req.path, error: String(err) })
    return errorResponse(
      c,
      new LlorchError(
        'registry_unavailable',
        'the registry is unavailable; inference with known keys and pools goes on, admin routes need it. Try again shortly.',
        { retryAfterSeconds: 5 },
      ),
    )
  }
  const requestId = c.get('requestId')
  logError('request.unhandled_error', { request_id: requestId, path: c.req.path, error: String(err), stack: err instanceof Error ? err.stack : undefined })
  return errorResponse(c, new LlorchError('internal_error', `internal error (request ${requestId ?? 'unknown'})`))
}
