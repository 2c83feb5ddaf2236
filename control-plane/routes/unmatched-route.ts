import type { Context } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { errorResponse } from '../middleware/error-response.ts'
import { API_OPERATIONS } from '../openapi/api-operations.ts'

/** A route's OpenAPI path as a regular expression; pool ids may contain slashes, as the pool routes take them. */
function pathPattern(path: string): RegExp {
  const param = path.startsWith('/v2/pools/') ? '.+' : '[^/]+'
  const source = path
    .split(/\{[^}]+\}/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join(param)
  return new RegExp(`^${source}$`)
}

const PATTERNS = API_OPERATIONS.map((op) => ({ method: op.method.toUpperCase(), pattern: pathPattern(op.path) }))

/** The methods the app answers at `path`, as an `Allow` header lists them; empty when no route has this path. */
export function allowedMethods(path: string): string[] {
  const methods = new Set(PATTERNS.filter((p) => p.pattern.test(path)).map((p) => p.method))
  if (methods.has('GET')) methods.add('HEAD')
  return [...methods]
}

/**
 * What a request no route took is answered: 405 with `Allow` when the path exists for other
 * methods (a GET on a POST route), else 404.
 */
export function unmatchedRoute(c: Context): Response {
  const allowed = allowedMethods(c.req.path)
  if (allowed.length === 0 || allowed.includes(c.req.method))
    return errorResponse(c, new LlorchError('not_found', `no route for ${c.req.method} ${c.req.path}`))
  const error = new LlorchError(
    'method_not_allowed',
    `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.filter((m) => m !== 'HEAD').join(' or ')}`,
  )
  return errorResponse(c, error, { Allow: allowed.join(', ') })
}
