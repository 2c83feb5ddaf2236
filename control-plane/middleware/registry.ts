import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../runtime/env.ts'
import type { Registry } from '../../db/client.ts'
import { registryFor } from '../registry/registry-for.ts'
import { readWorkerSettings } from '../runtime/env.ts'

/**
 * Validates the deployment's settings and gives the request a libSQL client, made at its first
 * use: inference requests mostly never read the registry, and making the client and its drizzle
 * handle showed in the per-request profile. A client per request shares nothing between requests.
 */
export function registry(): MiddlewareHandler<AppEnv> {
  return async function registryMiddleware(c, next) {
    const settings = readWorkerSettings(c.env)
    c.set('settings', settings)
    let made: Registry | null = null
    c.set('registry', () => (made ??= registryFor(c.env)))
    await next()
  }
}
