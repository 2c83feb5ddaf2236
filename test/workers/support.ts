import { runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'

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
