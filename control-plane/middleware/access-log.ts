import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../runtime/env.ts'
import { logEvent } from '../runtime/log.ts'
import type { AuthVariables } from './bearer-auth.ts'

/**
 * One `http.request` line for every request that changes something or fails, with its request
 * id and who made it (a key id or `admin_token`, never the credential). Successful reads are
 * not events: dashboards poll them.
 */
export function accessLog(): MiddlewareHandler<AppEnv & { Variables: Partial<AuthVariables> }> {
  return async function accessLogMiddleware(c, next) {
    const startedAt = Date.now()
    await next()
    const status = c.res.status
    if (c.req.method === 'GET' && status < 400) return
    const principal = c.get('principal')
    logEvent('http.request', {
      request_id: c.var.requestId,
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Date.now() - startedAt,
      key: principal ? (principal.kind === 'api_key' ? principal.keyId : 'admin_token') : null,
    })
  }
}
