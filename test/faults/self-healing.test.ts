/**
 * The self-healing part of `npm run test:faults` (issue 23): the real local stack (workerd,
 * libSQL, agent processes, fake engines) driven into the states nothing heals by waiting: a queue
 * no replica is left for, a dispatch the agent swallowed, an engine that hangs with its health
 * OK, a client gone before its first token, unknown model names. Each adds a row to the table
 * printed at the end.
 */
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { UNLISTED_DISPATCH_GRACE_MS } from '../../control-plane/node/task-streams.ts'
import { createNode, getPool } from '../support/linked-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'
import { createKey, expectedText, servePool } from '../support/openai-stack.ts'
import { connectSimulatedAgent } from '../support/simulated-agent.ts'
import { streamChat } from './fault-clients.ts'
import type { ClientOutcome } from './fault-clients.ts'
import { renderFaultTable, summarizeClients } from './fault-report.ts'
import type { FaultRow } from './fault-report.ts'

const HEARTBEAT_MS = 200
const CEILING_MS = 30_000
const MODEL = 'heal-model'
/** Tokens per request of the streams a fault cuts: long enough to be running when it comes. */
const LONG_TOKENS = 20
/** Tokens per request otherwise; the paced engines stream them over about half a second. */
const TOKENS = 5
const PACED = ['--tokens-per-second', '10']

/** Requests with made-up model names, sent this many at a time. */
const MADE_UP_REQUESTS = 10_000
const MADE_UP_CONCURRENCY = 200

/** The PoolObjects workerd keeps on disk: one SQLite file each, under the stack's persisted state. */
function poolObjectFiles(s: Stack): string[] {
  const root = path.join(s.dir, 'workerd')
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.includes('PoolObject') && file.endsWith('.sqlite'))
    .sort()
}

const rows: FaultRow[] = []
afterAll(() => {
  if (rows.length > 0) console.log(`\nSelf-healing faults (heartbeat ${HEARTBEAT_MS} ms)\n${renderFaultTable(rows)}\n`)
})

describe('self-healing', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack | null = null
  afterEach(async () => {
    await stack?.stop()
    stack = null
  })

  async function start(): Promise<Stack> {
    stack = await startStack({ heartbeatIntervalMs: HEARTBEAT_MS })
    return stack
  }

  /** The row of a fault whose clients could not all be served: what they saw, the busy slots after, a new request. */
  async function record(s: Stack, key: string, fault: string, outcomes: ClientOutcome[], tokens: number): Promise<FaultRow> {
    await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS))
    const pool = await getPool(s, MODEL)
    const next = await streamChat(s, key, MODEL, 1)
    const row: FaultRow = {
      fault,
      ...summarizeClients(outcomes, expectedText(tokens), { anotherReplicaCouldServe: false }),
      busyAfter: pool?.slots_busy ?? 0,
      nextRequest: next.ok ? `served in ${next.ms} ms` : `${next.status} ${next.errorCode ?? ''}`.trim(),
    }
    rows.push(row)
    expect(row.badTokens, `${fault}: duplicated or out-of-order tokens`).toBe(0)
    expect(row.busyAfter, `${fault}: busy slots two heartbeats later`).toBe(0)
    return row
  }

  it('a revoked node: its running streams end node_lost, its queued ones (already answered 200) end no_replica within 2 s', async () => {
    const s = await start()
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: ['--tokens-per-second', '4'] })
    const { key } = await createKey(s)
    let answered = 0
    const running = Promise.all(
      Array.from({ length: 5 }, () => streamChat(s, key, MODEL, LONG_TOKENS, undefined, (status) => (answered += status === 200 ? 1 : 0))),
    )
    // Two streams run; three wait in the queue past the point where their stream is answered.
    await waitFor(() => answered === 5 || null, { timeoutMs: CEILING_MS, message: 'five streams answered 200' })
    expect((await getPool(s, MODEL))?.queue_depth).toBe(3)

    const revokedAt = performance.now()
    expect((await s.admin('DELETE', `/v2/nodes/${a.agent.nodeId}`)).status).toBe(200)
    const outcomes = await running
    const answeredInMs = Math.round(performance.now() - revokedAt)
    const row = await record(s, key, 'node revoked, queue waiting', outcomes, LONG_TOKENS)
    expect(row.errors).toEqual({ node_lost: 2, no_replica: 3 })
    expect(outcomes.every((o) => o.status === 200)).toBe(true)
    expect(answeredInMs, 'every client answered within 2 s of the revocation').toBeLessThan(2_000)
    // No replica is left: a new request is refused at once.
    expect(row.nextRequest).toBe('503 no_replica')
  })

  it('a swallowed dispatch: the task is placed again within a heartbeat plus the grace, and the agent is told to cancel it', async () => {
    const s = await start()
    const b = await servePool(cleanup, s, MODEL, { name: 'node-b', slots: 2, fakeArgs: PACED })
    const node = await createNode(s, 'node-swallow')
    const connected = await connectSimulatedAgent(s.url, node.token, [{ id: MODEL, engine: 'command', slots: 2 }])
    if (!connected.ok) throw new Error(`the swallowing agent was refused: ${connected.status} ${connected.error}`)
    const swallower = connected.agent
    cleanup.defer(() => swallower.close())
    await waitFor(async () => (await getPool(s, MODEL))?.replicas.some((r) => r.node_id === node.id && r.state === 'ready'), {
      message: 'the swallowing replica ready',
    })
    const { key } = await createKey(s)
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => streamChat(s, key, MODEL, TOKENS)))
    const row = await record(s, key, 'dispatch swallowed by its agent', outcomes, TOKENS)
    expect(swallower.dispatched.length, 'tasks dispatched to the swallowing agent').toBeGreaterThan(0)
    expect(row.served, 'every client served by the other node').toBe(4)
    expect((await fakeEngineStats(b.engineUrl)).completed).toBeGreaterThanOrEqual(4)
    expect(new Set(swallower.cancelled)).toEqual(new Set(swallower.dispatched))
    // A heartbeat plus the grace, then half a second of tokens on node-b, with room for a busy machine.
    expect(row.slowestAnswerMs).toBeLessThan(HEARTBEAT_MS + UNLISTED_DISPATCH_GRACE_MS + 2_000)
  })

  it('an engine that always hangs, health OK: every client gets a clear error, its replica is restarted as hung, then failed by the breaker', async () => {
    const s = await start()
    const restart = { initial_delay_ms: 100, max_delay_ms: 200, max_crashes: 2 }
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: ['--hang'], overrides: { restart, probe_timeout_ms: 500 } })
    expect((await s.admin('PATCH', `/v2/pools/${MODEL}`, { first_token_timeout_ms: 1_000 })).status).toBe(200)
    const { key } = await createKey(s)
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => streamChat(s, key, MODEL, TOKENS)))
    const row = await record(s, key, 'engine always hangs, one node', outcomes, TOKENS)
    expect(row.served).toBe(0)
    for (const code of Object.keys(row.errors)) expect(['deadline_exceeded', 'no_replica']).toContain(code)
    expect(row.slowestAnswerMs, 'no client waits for its queue deadline').toBeLessThan(10_000)
    expect(a.agent.output()).toContain('hung: no first token from 2 tasks')
    const replica = (await getPool(s, MODEL))?.replicas[0]
    expect(replica?.state).toBe('failed')
    expect(replica?.reason).toMatch(/restarted as hung, then no answer to a one-token probe generation within 500 ms.*circuit breaker open/s)
    expect(row.nextRequest).toBe('503 no_replica')
  })

  it('clients gone while their tasks wait for the first token: noticed within a second, the engine requests stopped and the slots free within 2 s', async () => {
    const s = await start()
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: ['--hang'] })
    // Well past the moment the clients leave; it bounds only the request sent after them.
    expect((await s.admin('PATCH', `/v2/pools/${MODEL}`, { first_token_timeout_ms: 4_000 })).status).toBe(200)
    const { key } = await createKey(s)
    const answered = new AbortController()
    const early = new AbortController()
    // One client leaves after its stream was answered (waiting comments), one before anything came back.
    const running = Promise.all([
      streamChat(s, key, MODEL, TOKENS, answered.signal, () => setTimeout(() => answered.abort(), 0)),
      streamChat(s, key, MODEL, TOKENS, early.signal),
    ])
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).active === 2 || null, { message: 'both requests on the engine' })
    early.abort()
    const outcomes = await running
    const goneAt = performance.now()
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).aborted === 2 || null, {
      timeoutMs: CEILING_MS,
      intervalMs: 10,
      message: 'both engine requests aborted',
    })
    await waitFor(async () => (await getPool(s, MODEL))?.slots_busy === 0 || null, { timeoutMs: CEILING_MS, intervalMs: 10, message: 'both slots free' })
    const freedInMs = Math.round(performance.now() - goneAt)
    expect(outcomes.map((o) => o.errorCode)).toEqual(['aborted', 'aborted'])
    expect(outcomes[0]?.status, 'the first stream was answered while it waited').toBe(200)
    expect(freedInMs, 'engine requests stopped and slots free within 2 s of the clients leaving').toBeLessThan(2_000)
    await record(
      s,
      key,
      'clients gone before first token',
      outcomes.map((o) => ({ ...o, text: '' })),
      TOKENS,
    )
  })

  it('10,000 requests with made-up model names: every one 404, and no Durable Object created for any', async () => {
    const s = await start()
    await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: PACED })
    const { key } = await createKey(s)
    expect((await streamChat(s, key, MODEL, TOKENS)).ok).toBe(true)
    const objectsBefore = poolObjectFiles(s)
    expect(objectsBefore.length, 'the served pool has its object on disk').toBeGreaterThan(0)
    const statuses = new Map<string, number>()
    const startedAt = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: MADE_UP_CONCURRENCY }, async () => {
        while (next < MADE_UP_REQUESTS) {
          next += 1
          const response = await fetch(new URL('/v1/chat/completions', s.url), {
            method: 'POST',
            headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ model: `made-up-${crypto.randomUUID()}`, messages: [{ role: 'user', content: 'hi' }] }),
          })
          const code = String(z.looseObject({ error: z.looseObject({ code: z.unknown() }) }).parse(await response.json()).error.code)
          const seen = `${response.status} ${code}`
          statuses.set(seen, (statuses.get(seen) ?? 0) + 1)
        }
      }),
    )
    const ms = Math.round(performance.now() - startedAt)
    expect(Object.fromEntries(statuses)).toEqual({ '404 model_not_found': MADE_UP_REQUESTS })
    expect(poolObjectFiles(s), 'no object stored for a made-up name').toEqual(objectsBefore)
    rows.push({
      fault: `${MADE_UP_REQUESTS} made-up model names`,
      clients: MADE_UP_REQUESTS,
      served: 0,
      errors: { model_not_found: MADE_UP_REQUESTS },
      lost: 0,
      badTokens: 0,
      slowestAnswerMs: ms,
      busyAfter: 0,
      nextRequest: `${objectsBefore.length} pool object before and after`,
    })
  })
})
