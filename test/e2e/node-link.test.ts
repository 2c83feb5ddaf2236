import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NodeList } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { createNode, getNode, getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { connectSimulatedAgent } from '../support/simulated-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const HEARTBEAT_INTERVAL_MS = 200
/** Ceiling for anything that should happen within a few heartbeats on a loaded 2-core machine. */
const CEILING_MS = 20_000

describe('agents dial out to the control plane', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack
  beforeEach(async () => {
    stack = await startStack({ heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS })
  })
  afterEach(async () => {
    await stack.stop()
  })

  it('shows the node online with its GPUs and its replica ready in the node and pool listings', async () => {
    const agent = await startLinkedAgent(cleanup, stack, { name: 'gpu-1', pools: [fakePoolInput('demo-model', ['--engine-version', 'fake-9'], { slots: 3 })] })
    const node = await waitFor(
      async () => {
        const view = await getNode(stack, agent.nodeId)
        return view.status === 'online' && view.replicas[0]?.state === 'ready' ? view : null
      },
      { timeoutMs: CEILING_MS, intervalMs: 50, message: 'the node online with a ready replica' },
    )
    expect(node.gpus).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memory_total_mib: 24564, memory_used_mib: 1024, utilization_percent: 37 },
      { index: 1, name: 'NVIDIA A100-SXM4-80GB', memory_total_mib: 81920, memory_used_mib: 0, utilization_percent: 0 },
    ])
    expect(node.agent_version).toMatch(/^\d+\.\d+\.\d+/)
    expect(node.replicas).toMatchObject([{ pool: 'demo-model', engine: 'command', slots: 3 }])

    const listing = NodeList.parse(await (await stack.admin('GET', '/v2/nodes')).json())
    expect(listing.nodes.find((n) => n.id === agent.nodeId)?.status).toBe('online')

    const pool = await getPool(stack, 'demo-model')
    expect(pool).toMatchObject({ id: 'demo-model', engine: 'command', state: 'ready', slots_total: 3, slots_busy: 0, queue_depth: 0 })
    expect(pool?.replicas).toMatchObject([{ node_id: agent.nodeId, state: 'ready', slots: 3 }])
  })

  it('moves the replica through draining, stopped, starting and ready on drain then preload', async () => {
    const agent = await startLinkedAgent(cleanup, stack, {
      name: 'gpu-drain',
      pools: [fakePoolInput('drain-model', ['--load-ms', '300'], { stop_grace_ms: 5_000 })],
    })
    await waitFor(async () => (await getPool(stack, 'drain-model'))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'pool ready' })

    const seen: string[] = []
    const record = async () => {
      const state = (await getPool(stack, 'drain-model'))?.replicas[0]?.state
      if (state && seen.at(-1) !== state) seen.push(state)
      return state
    }
    await record()
    const drained = await stack.admin('POST', '/v2/pools/drain-model/drain', { deadline_ms: 1_000 })
    expect(drained.status).toBe(202)
    expect(await drained.json()).toEqual({ pool: 'drain-model', command: 'drain', nodes: [{ node_id: agent.nodeId, ok: true, error: null }] })
    await waitFor(async () => (await record()) === 'stopped', { timeoutMs: CEILING_MS, intervalMs: 5, message: 'replica stopped' })

    const preloaded = await stack.admin('POST', '/v2/pools/drain-model/preload')
    expect(preloaded.status).toBe(202)
    await waitFor(async () => (await record()) === 'ready', { timeoutMs: CEILING_MS, intervalMs: 5, message: 'replica ready again' })
    // Each step is written to the registry as the agent reports it; fast steps may be overwritten
    // between two polls, so the sequence must be in order but may skip the transient ones.
    expect(seen[0]).toBe('ready')
    expect(seen).toContain('stopped')
    expect(seen.at(-1)).toBe('ready')
    const order = ['ready', 'draining', 'stopped', 'starting', 'ready']
    let cursor = 0
    for (const state of seen) {
      const at = order.indexOf(state, cursor)
      expect(at, `states seen in order: ${seen.join(' → ')}`).toBeGreaterThanOrEqual(cursor)
      cursor = at
    }
  })

  it('marks the node offline within three heartbeat intervals after the agent stops answering', async () => {
    const agent = await startLinkedAgent(cleanup, stack, { name: 'gpu-silent', pools: [fakePoolInput('silent-model')] })
    await waitFor(async () => (await getNode(stack, agent.nodeId)).status === 'online', { timeoutMs: CEILING_MS, message: 'node online' })
    // A frozen agent keeps its TCP connection open but sends nothing: only the missed heartbeats tell.
    process.kill(agent.pid, 'SIGSTOP')
    try {
      const frozenAt = Date.now()
      await waitFor(async () => (await getNode(stack, agent.nodeId)).status === 'offline', { timeoutMs: CEILING_MS, intervalMs: 50, message: 'node offline' })
      expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(2 * HEARTBEAT_INTERVAL_MS)
      const pool = await getPool(stack, 'silent-model')
      expect(pool?.replicas[0]?.state).toBe('lost')
    } finally {
      process.kill(agent.pid, 'SIGCONT')
    }
  })

  it("answers an agent's Close frame with its own, so a stopping agent exits at once and is offline", async () => {
    const node = await createNode(stack, 'gpu-closing')
    const connected = await connectSimulatedAgent(stack.url, node.token, [{ id: 'closing-model', engine: 'command', slots: 1 }])
    if (!connected.ok) throw new Error(`not welcomed: ${connected.status} ${connected.error}`)
    // Unanswered, the ws client would give up after its own close timeout and report 1006.
    expect(await connected.agent.closeCleanly()).toBe(1000)
    await waitFor(async () => (await getNode(stack, node.id)).status === 'offline', { timeoutMs: CEILING_MS, message: 'node offline' })
  })

  it('marks the node offline at once when the agent is killed', async () => {
    const agent = await startLinkedAgent(cleanup, stack, { name: 'gpu-killed', pools: [fakePoolInput('killed-model')] })
    await waitFor(async () => (await getNode(stack, agent.nodeId)).status === 'online', { timeoutMs: CEILING_MS, message: 'node online' })
    process.kill(agent.pid, 'SIGKILL')
    await waitFor(async () => (await getNode(stack, agent.nodeId)).status === 'offline', { timeoutMs: CEILING_MS, intervalMs: 20, message: 'node offline' })
  })

  it('reconnects and registers again by itself after the control plane restarts', async () => {
    const agent = await startLinkedAgent(cleanup, stack, { name: 'gpu-restart', pools: [fakePoolInput('restart-model')] })
    await waitFor(async () => (await getPool(stack, 'restart-model'))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'pool ready' })
    const welcomesBefore = agent.output().split('link.welcomed').length - 1
    await stack.restartControlPlane()
    await waitFor(() => agent.output().split('link.welcomed').length - 1 > welcomesBefore, { timeoutMs: CEILING_MS, message: 'a second welcome' })
    const node = await waitFor(
      async () => {
        const view = await getNode(stack, agent.nodeId)
        return view.status === 'online' && view.replicas[0]?.state === 'ready' ? view : null
      },
      { timeoutMs: CEILING_MS, message: 'node online again' },
    )
    expect(node.replicas).toHaveLength(1)
    expect(isAlive(agent.pid)).toBe(true)
    // Its first connection after the restart was kept: the offline alarm left from before the
    // restart did not drop it as silent (4408) before its hello.
    expect(agent.output()).not.toContain('"code":4408')
  })

  it('refuses a revoked node token: the agent is disconnected, refused on reconnect and keeps running', async () => {
    const agent = await startLinkedAgent(cleanup, stack, { name: 'gpu-revoked', pools: [fakePoolInput('revoked-model')] })
    await waitFor(async () => (await getNode(stack, agent.nodeId)).status === 'online', { timeoutMs: CEILING_MS, message: 'node online' })
    expect((await stack.admin('DELETE', `/v2/nodes/${agent.nodeId}`)).status).toBe(200)
    await waitFor(() => agent.output().includes('"code":4403'), { timeoutMs: CEILING_MS, message: 'the agent told it was revoked' })
    await waitFor(() => agent.output().includes('"status":401'), { timeoutMs: 60_000, message: 'a refused reconnect' })
    expect((await getNode(stack, agent.nodeId)).status).toBe('revoked')
    expect(isAlive(agent.pid)).toBe(true)
  })
})
