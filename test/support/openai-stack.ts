/** The official `openai` client against a local stack, and fake-engine pools served by linked agents. */
import { createServer } from 'node:net'
import OpenAI from 'openai'
import { CreateApiKeyResponse } from '../../protocol/index.ts'
import { fakePoolInput } from './agents.ts'
import { getPool, startLinkedAgent } from './linked-agent.ts'
import type { LinkedAgent } from './linked-agent.ts'
import type { Stack } from './local-stack.ts'
import { waitFor } from './processes.ts'
import type { useProcessCleanup } from './processes.ts'

export const CEILING_MS = 20_000

/**
 * Ports handed to engines that the agent starts later, below Linux's ephemeral range (32768 and
 * up): a port the kernel gave out and took back can be the local port of the next outgoing
 * connection, and the engine then fails to bind it.
 */
const ENGINE_PORTS = { first: 20_000, count: 12_000 } as const

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port nothing listens on now, for an engine the agent starts later. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = ENGINE_PORTS.first + Math.floor(Math.random() * ENGINE_PORTS.count)
    if (await bindable(port)) return port
  }
}

export async function createKey(stack: Stack, scopes: string[] = ['inference']): Promise<{ id: string; key: string }> {
  const response = await stack.admin('POST', '/v2/api-keys', { name: `key-${scopes.join('-')}`, scopes })
  return CreateApiKeyResponse.parse(await response.json())
}

/** What the fake engine streams for `n` tokens. */
export const expectedText = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'tok0' : ` tok${i}`)).join('')

/** The official client, unmodified, pointed at the stack; no retries, so every failure shows. */
export function openaiClient(stack: Stack, apiKey: string): OpenAI {
  return new OpenAI({ apiKey, baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0, timeout: 30_000 })
}

export interface ServedPool {
  agent: LinkedAgent
  /** The fake engine itself, for its stats and for asking it directly. */
  engineUrl: string
}

/** Starts an agent serving `id` with the fake engine and waits until its replica is ready. */
export async function servePool(
  cleanup: ReturnType<typeof useProcessCleanup>,
  stack: Stack,
  id: string,
  {
    slots = 2,
    fakeArgs = [],
    name = `node-${id}`,
    overrides = {},
  }: { slots?: number; fakeArgs?: string[]; name?: string; overrides?: Record<string, unknown> } = {},
): Promise<ServedPool> {
  const port = await freePort()
  const agent = await startLinkedAgent(cleanup, stack, { name, pools: [fakePoolInput(id, fakeArgs, { slots, port, ...overrides })] })
  await waitFor(async () => (await getPool(stack, id))?.replicas.some((r) => r.node_id === agent.nodeId && r.state === 'ready'), {
    timeoutMs: CEILING_MS,
    message: `a ready replica of ${id} on ${agent.nodeId}`,
  })
  return { agent, engineUrl: `http://127.0.0.1:${port}` }
}
