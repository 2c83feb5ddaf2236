import { z } from 'zod'
import { BATCH_COMPLETION_WINDOW_MS, LlorchError, describeIssues } from '../../protocol/index.ts'
import type { Registry } from '../../db/client.ts'

/** Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here. */
export type Bindings = Env & {
  LIBSQL_URL?: string
  ADMIN_TOKEN?: string
  LIBSQL_AUTH_TOKEN?: string
}

/** The string settings a deployment must provide, checked once per request before use. */
export const WorkerSettings = z.object({
  LIBSQL_URL: z.url({ protocol: /^(https?|libsql)$/ }),
  LIBSQL_AUTH_TOKEN: z.string().optional(),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters (set it with `wrangler secret put ADMIN_TOKEN`)'),
  /** Agents heartbeat this often; a node is offline after three missed heartbeats. */
  HEARTBEAT_INTERVAL_MS: z.coerce.number().int().min(20).max(600_000).default(10_000),
  /** A batch expires this long after it was made (`expires_at`); OpenAI's 24 h unless the operator sets it, e.g. short in tests. */
  BATCH_COMPLETION_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(30 * BATCH_COMPLETION_WINDOW_MS)
    .default(BATCH_COMPLETION_WINDOW_MS),
})
export type WorkerSettings = z.infer<typeof WorkerSettings>

/** `env` is the same object for every request of an isolate, so it is validated once. */
const settingsByEnv = new WeakMap<Bindings, WorkerSettings>()

/** A misconfigured deployment is the operator's fault, not the client's: it answers 503 with the field named. */
export function readWorkerSettings(env: Bindings): WorkerSettings {
  const known = settingsByEnv.get(env)
  if (known) return known
  const parsed = WorkerSettings.safeParse({
    LIBSQL_URL: env.LIBSQL_URL,
    LIBSQL_AUTH_TOKEN: env.LIBSQL_AUTH_TOKEN || undefined,
    ADMIN_TOKEN: env.ADMIN_TOKEN,
    HEARTBEAT_INTERVAL_MS: env.HEARTBEAT_INTERVAL_MS,
    BATCH_COMPLETION_WINDOW_MS: env.BATCH_COMPLETION_WINDOW_MS,
  })
  if (parsed.success) {
    settingsByEnv.set(env, parsed.data)
    return parsed.data
  }
  throw new LlorchError('registry_unavailable', `control plane is misconfigured: ${describeIssues(parsed.error.issues)}`)
}

export type Variables = {
  requestId: string
  settings: WorkerSettings
  /** The request's registry client, made at the first call. */
  registry: () => Registry
}

export type AppEnv = { Bindings: Bindings; Variables: Variables }
