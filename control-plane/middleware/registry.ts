import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../runtime/env.ts'
import { registryFor } from '../registry/registry-for.ts'
import { readWorkerSettings } from '../runtime/env.ts'

/**
 * Validates the deployment's settings and opens a libSQL client for this request. A client per
 * request is cheap (HTTP, no connection to hold) and shares nothing between requests.
 */
export function registry(): MiddlewareHandler<AppEnv> {
  return async function registryMiddleware(c, next) {
    const settings = readWorkerSettings(c.env)
    c.set('settings', settings)
    c.set('registry', registryFor(c.env))
    await next()
  }
}
