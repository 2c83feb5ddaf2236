import type { MiddlewareHandler } from 'hono'
import type { ApiKeyScope, KeyLimits } from '../../protocol/index.ts'
import { LlorchError } from '../../protocol/index.ts'
import type { ApiKeyCache } from '../auth/api-key-cache.ts'
import { constantTimeEqual, parseCredential, readBearer, verifyCredential } from '../auth/credentials.ts'
import { missingCredential, missingScope, wrongCredential } from '../auth/wrong-credential.ts'
import type { AppEnv } from '../runtime/env.ts'

/** Who made the request. The bootstrap admin token is not a key and has no key id. */
export type Principal = { kind: 'admin_token' } | { kind: 'api_key'; keyId: string; scopes: ApiKeyScope[]; limits: KeyLimits }

export type AuthVariables = { principal: Principal }

function unauthorized(message: string): LlorchError {
  return new LlorchError('unauthorized', message)
}

/**
 * Requires a credential with `scope` (or with one of several): an API key carrying it, or, for
 * `admin`, the bootstrap admin token. Missing or unknown credentials are 401, a valid key
 * without the scope is 403; a credential of the wrong kind (the admin token on /v1, a node token
 * anywhere here) is 401 with a message that says which credential the route takes (the first
 * scope's).
 */
export function requireScope(
  scope: ApiKeyScope | readonly [ApiKeyScope, ...ApiKeyScope[]],
  cache: ApiKeyCache,
): MiddlewareHandler<AppEnv & { Variables: AuthVariables }> {
  const scopes: readonly ApiKeyScope[] = typeof scope === 'string' ? [scope] : scope
  const wanted: ApiKeyScope = typeof scope === 'string' ? scope : scope[0]
  return async function bearerAuth(c, next) {
    const token = readBearer(c.req.header('Authorization'))
    if (!token) throw missingCredential(wanted)

    const credential = parseCredential(token)
    if (!credential) {
      const isAdminToken = await constantTimeEqual(token, c.var.settings.ADMIN_TOKEN)
      if (isAdminToken && scopes.includes('admin')) {
        c.set('principal', { kind: 'admin_token' })
        return next()
      }
      throw wrongCredential(wanted, isAdminToken ? 'admin_token' : 'unrecognised')
    }
    if (credential.kind !== 'api_key') throw wrongCredential(wanted, 'node')

    const now = Date.now()
    let key = cache.get(credential.id, now)
    if (key === undefined) {
      const lookup = await c.env.API_KEYS.getByName(credential.id).lookup()
      if (!lookup.ok) throw new LlorchError(lookup.code, lookup.message)
      key = lookup.key
      cache.set(credential.id, key, now)
    }
    if (!key || !(await verifyCredential(token, key.hash))) throw unauthorized('invalid or revoked API key')
    if (!scopes.some((s) => key.scopes.includes(s))) throw missingScope(wanted)
    c.set('principal', { kind: 'api_key', keyId: key.id, scopes: key.scopes, limits: key.limits })
    await next()
  }
}
