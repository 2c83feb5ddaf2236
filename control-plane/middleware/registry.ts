import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.ts'
import { readWorkerSettings, registryFor } from '../env.ts'

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
