import { createRegistry } from '../../db/client.ts'
import type { Registry } from '../../db/client.ts'
import { readWorkerSettings } from '../runtime/env.ts'
import type { Bindings } from '../runtime/env.ts'
import { registryFetch } from './registry-fetch.ts'

/** A Registry for code that has `env` but no request context (Durable Objects). */
export function registryFor(env: Bindings): Registry {
  const settings = readWorkerSettings(env)
  return createRegistry({ url: settings.LIBSQL_URL, authToken: settings.LIBSQL_AUTH_TOKEN, fetch: registryFetch() })
}
