import { env, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import type { PoolPolicy, ReplicaReport } from '../../protocol/index.ts'

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef'

/** Calls the Worker under test as a client would, with JSON in and out. */
export async function call(method: string, path: string, { token = ADMIN_TOKEN, body }: { token?: string | null; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = {}
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  return exports.default.fetch(`https://llorch.test${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`
}

/**
 * Crashes one Durable Object as a restart of the control plane would: its memory is gone and the
 * calls waiting in it fail. `abortAllDurableObjects` would do that to every object of every test
 * file running at the same moment too.
 */
export async function crashDurableObject(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => state.abort('crashed by the test')).catch(() => {})
}

/** A pool the registry has never seen, named `<prefix>-…`, told its policy as PATCH /v2/pools would. */
export async function freshPool(policy: Partial<PoolPolicy> = {}, prefix = 'pool') {
  const poolId = uniqueName(prefix)
  const stub = env.POOLS.getByName(poolId)
  await stub.setPolicy({
    queue_capacity: 1,
    preload_mode: 'eager',
    idle_drain_ms: null,
    default_priority: 'interactive',
    first_token_timeout_ms: 60_000,
    idle_timeout_ms: 30_000,
    ...policy,
  })
  return { poolId, stub }
}

/** What an agent reports of a ready single-slot replica of `pool`. */
export function readyReplica(pool: string, overrides: Partial<ReplicaReport> = {}): ReplicaReport {
  return { pool, engine: 'openai', state: 'ready', slots: 1, slots_busy: 0, engine_version: null, reason: null, breaker_open: false, ...overrides }
}
