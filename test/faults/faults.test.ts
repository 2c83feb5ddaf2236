/**
 * `npm run test:faults`: the real local stack (workerd, libSQL, agent processes, fake engines)
 * driven through each failure SPEC §4.2 promises to survive. Every fault asserts the invariants
 * (no queued task lost while a replica could serve it, every client answered, no slot left busy
 * two heartbeats later, a new request served) and adds a row to the table printed at the end.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { getNode, getPool, waitForHeartbeatAfter } from '../support/linked-agent.ts'
import type { LinkedAgent } from '../support/linked-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { enginePidsIn, fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'
import { createKey, expectedText, servePool } from '../support/openai-stack.ts'
import { streamChat } from './fault-clients.ts'
import type { ClientOutcome } from './fault-clients.ts'
import { renderFaultTable, summarizeClients } from './fault-report.ts'
import type { FaultRow } from './fault-report.ts'

const HEARTBEAT_MS = 200
const CEILING_MS = 30_000
const MODEL = 'fault-model'
/** Tokens per request; the paced engines stream them over about half a second. */
const TOKENS = 5
const PACED = ['--tokens-per-second', '10']
/** Quick restarts, so an engine that crashed is back within a second. */
const RESTART_FAST = { restart: { initial_delay_ms: 100, max_delay_ms: 500 } }

const rows: FaultRow[] = []
afterAll(() => {
  if (rows.length > 0) console.log(`\nFault suite (heartbeat ${HEARTBEAT_MS} ms, ${TOKENS} tokens per request)\n${renderFaultTable(rows)}\n`)
})

describe('faults', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack | null = null
  afterEach(async () => {
    await stack?.stop()
    stack = null
  })

  async function start(options: { stallableRegistry?: boolean } = {}): Promise<Stack> {
    stack = await startStack({ heartbeatIntervalMs: HEARTBEAT_MS, ...options })
    return stack
  }

  const engineOf = (agent: LinkedAgent): number => {
    const pid = enginePidsIn(agent.stateDir)[0]
    if (pid === undefined) throw new Error(`no engine pid for ${agent.nodeId}`)
    return pid
  }

  /** Busy slots two heartbeats after the clients finished, then a fresh request; completes the row and checks it. */
  async function finish(
    s: Stack,
    key: string,
    fault: string,
    outcomes: ClientOutcome[],
    { anotherReplicaCouldServe }: { anotherReplicaCouldServe: boolean },
  ): Promise<FaultRow> {
    await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS))
    const pool = await getPool(s, MODEL)
    const busyAfter = pool?.slots_busy ?? -1
    const next = await streamChat(s, key, MODEL, TOKENS)
    const row: FaultRow = {
      fault,
      ...summarizeClients(outcomes, expectedText(TOKENS), { anotherReplicaCouldServe }),
      busyAfter,
      nextRequest: next.ok ? `served in ${next.ms} ms` : `failed: ${next.errorCode}`,
    }
    rows.push(row)
    expect(row.lost, `${fault}: clients failed before any token although a replica could serve them`).toBe(0)
    expect(row.badTokens, `${fault}: duplicated or out-of-order tokens`).toBe(0)
    expect(row.slowestAnswerMs, `${fault}: a client waited past the deadlines`).toBeLessThan(CEILING_MS)
    expect(row.busyAfter, `${fault}: busy slots two heartbeats later`).toBe(0)
    expect(next.ok, `${fault}: a new request after the fault`).toBe(true)
    return row
  }

  /** Two nodes serving the pool with `slots` each; the first one is the one the fault hits. */
  async function twoNodes(s: Stack, { slots = 2, fakeArgs = PACED }: { slots?: number; fakeArgs?: string[] } = {}) {
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots, fakeArgs, overrides: RESTART_FAST })
    const b = await servePool(cleanup, s, MODEL, { name: 'node-b', slots, fakeArgs, overrides: RESTART_FAST })
    return { a, b }
  }

  const clients = (s: Stack, key: string, n: number) => Promise.all(Array.from({ length: n }, () => streamChat(s, key, MODEL, TOKENS)))

  it('engine crash before the first token: its tasks move, nothing is lost', async () => {
    const s = await start()
    const { a } = await twoNodes(s, { fakeArgs: ['--tokens-per-second', '4'] })
    const { key } = await createKey(s)
    const running = clients(s, key, 8)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).active >= 1 || null, { intervalMs: 5, message: 'a task on node-a' })
    process.kill(engineOf(a.agent), 'SIGKILL')
    await finish(s, key, 'engine crash before first token', await running, { anotherReplicaCouldServe: true })
  })

  it('engine crash after the first token: those clients get a retriable error, the rest are served', async () => {
    const s = await start()
    const { a } = await twoNodes(s)
    const { key } = await createKey(s)
    const running = clients(s, key, 8)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).tokens >= 2 || null, { intervalMs: 5, message: 'tokens from node-a' })
    process.kill(engineOf(a.agent), 'SIGKILL')
    const outcomes = await running
    for (const o of outcomes.filter((x) => !x.ok)) expect(o.sawTokens).toBe(true)
    await finish(s, key, 'engine crash after first token', outcomes, { anotherReplicaCouldServe: true })
  })

  it('engine hang with health still OK: its tasks leave at the first-token deadline for the other node, and it is restarted as hung', async () => {
    const s = await start()
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: ['--hang'] })
    const b = await servePool(cleanup, s, MODEL, { name: 'node-b', slots: 2, fakeArgs: PACED })
    expect((await s.admin('PATCH', `/v2/pools/${MODEL}`, { first_token_timeout_ms: 1_000 })).status).toBe(200)
    const { key } = await createKey(s)
    const outcomes = await clients(s, key, 6)
    expect((await fakeEngineStats(b.engineUrl)).completed).toBeGreaterThanOrEqual(6)
    // Two tasks in a row missed their first token there: its agent restarted the engine as hung.
    await waitFor(() => a.agent.output().includes('hung: no first token from 2 tasks') || null, { message: 'node-a restarted as hung' })
    // node-a waits for its probe generation (which the engine would hang too): the next request goes to node-b.
    await finish(s, key, 'engine hang (health OK)', outcomes, { anotherReplicaCouldServe: true })
  })

  it('engine SIGSTOP: its tasks leave at the deadline, and it serves again after SIGCONT', async () => {
    const s = await start()
    const { a } = await twoNodes(s)
    expect((await s.admin('PATCH', `/v2/pools/${MODEL}`, { first_token_timeout_ms: 1_000, idle_timeout_ms: 1_000 })).status).toBe(200)
    const { key } = await createKey(s)
    const pid = engineOf(a.agent)
    process.kill(pid, 'SIGSTOP')
    const outcomes = await clients(s, key, 6)
    process.kill(pid, 'SIGCONT')
    await finish(s, key, 'engine SIGSTOP', outcomes, { anotherReplicaCouldServe: true })
  })

  it('agent SIGKILL with a second node: queued tasks move, started ones get a retriable error', async () => {
    const s = await start()
    const { a } = await twoNodes(s)
    const { key } = await createKey(s)
    const running = clients(s, key, 12)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).tokens >= 1 || null, { intervalMs: 5, message: 'tokens from node-a' })
    process.kill(-a.agent.pid, 'SIGKILL')
    const outcomes = await running
    for (const o of outcomes.filter((x) => !x.ok)) expect(o.sawTokens).toBe(true)
    await finish(s, key, 'agent SIGKILL, second node up', outcomes, { anotherReplicaCouldServe: true })
  })

  it('agent stalled past three heartbeats and back: its queued tasks move, it rejoins', async () => {
    const s = await start()
    const { a } = await twoNodes(s)
    const { key } = await createKey(s)
    const running = clients(s, key, 12)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).tokens >= 1 || null, { intervalMs: 5, message: 'tokens from node-a' })
    process.kill(a.agent.pid, 'SIGSTOP')
    await waitFor(async () => (await getNode(s, a.agent.nodeId)).status === 'offline' || null, { timeoutMs: CEILING_MS, message: 'node-a offline' })
    process.kill(a.agent.pid, 'SIGCONT')
    const outcomes = await running
    await waitFor(async () => (await getNode(s, a.agent.nodeId)).status === 'online' || null, { timeoutMs: CEILING_MS, message: 'node-a back online' })
    for (const o of outcomes.filter((x) => !x.ok)) expect(o.sawTokens).toBe(true)
    await finish(s, key, 'agent stall > 3 heartbeats, back', outcomes, { anotherReplicaCouldServe: true })
  })

  it('control plane killed and restarted with its state: ghost tasks give their slots back at once', async () => {
    const s = await start()
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: PACED })
    const { key } = await createKey(s)
    const running = clients(s, key, 4)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).tokens >= 1 || null, { intervalMs: 5, message: 'tokens flowing' })
    await s.restartControlPlane()
    const restartedAt = Date.now()
    const outcomes = await running
    await waitForHeartbeatAfter(s, a.agent.nodeId, restartedAt, CEILING_MS)
    const row = await finish(s, key, 'control plane restart', outcomes, { anotherReplicaCouldServe: false })
    expect(row.nextRequest).toMatch(/^served/)
  })

  it('libSQL stalled: inference goes on, registry routes answer 503 within the registry timeout', async () => {
    const s = await start({ stallableRegistry: true })
    await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: PACED })
    const { key } = await createKey(s)
    expect((await streamChat(s, key, MODEL, TOKENS)).ok).toBe(true)
    s.registryProxy?.stall()
    const [outcomes, admin] = await Promise.all([clients(s, key, 4), s.admin('GET', '/v2/nodes')])
    expect(admin.status).toBe(503)
    s.registryProxy?.resume()
    await finish(s, key, 'libSQL stalled', outcomes, { anotherReplicaCouldServe: true })
  })

  it('libSQL down: inference goes on, registry routes answer 503 at once', async () => {
    const s = await start()
    await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 2, fakeArgs: PACED })
    const { key } = await createKey(s)
    expect((await streamChat(s, key, MODEL, TOKENS)).ok).toBe(true)
    const poolBefore = await getPool(s, MODEL)
    expect(poolBefore?.slots_total).toBe(2)
    await s.libsql.close()
    const [outcomes, admin] = await Promise.all([clients(s, key, 4), s.admin('GET', '/v2/nodes')])
    expect(admin.status).toBe(503)
    // The pool view needs the registry; with it down, the row checks only what the clients saw and a new request.
    const next = await streamChat(s, key, MODEL, TOKENS)
    rows.push({
      fault: 'libSQL down',
      ...summarizeClients(outcomes, expectedText(TOKENS), { anotherReplicaCouldServe: true }),
      busyAfter: 0,
      nextRequest: next.ok ? `served in ${next.ms} ms` : `failed: ${next.errorCode}`,
    })
    expect(outcomes.every((o) => o.ok)).toBe(true)
    expect(next.ok).toBe(true)
  })

  it('clients disconnecting mid-stream: the engine requests stop and the slots free at once', async () => {
    const s = await start()
    const a = await servePool(cleanup, s, MODEL, { name: 'node-a', slots: 6, fakeArgs: ['--tokens-per-second', '20', '--tokens', '1000'] })
    const { key } = await createKey(s)
    const controllers = Array.from({ length: 6 }, () => new AbortController())
    const running = Promise.all(controllers.map((c) => streamChat(s, key, MODEL, 200, c.signal)))
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).tokens >= 12 || null, { intervalMs: 5, message: 'tokens flowing to all' })
    for (const c of controllers) c.abort()
    const outcomes = await running
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).aborted === 6 || null, {
      timeoutMs: 1_000,
      intervalMs: 10,
      message: 'six engine aborts within a second',
    })
    await finish(
      s,
      key,
      'clients disconnecting',
      outcomes.map((o) => ({ ...o, text: '' })),
      { anotherReplicaCouldServe: true },
    )
  })
})
