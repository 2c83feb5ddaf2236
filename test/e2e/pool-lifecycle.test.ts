import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { NodeDrainResult, PoolCommandResult } from '../../protocol/index.ts'
import type { ReplicaState } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getNode, getPool, startLinkedAgent, waitForHeartbeatAfter } from '../support/linked-agent.ts'
import type { LinkedAgent } from '../support/linked-agent.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, expectedText, freePort, openaiClient, servePool } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()
const stack = useStack({ heartbeatIntervalMs: 200 })

async function stateOn(s: Stack, pool: string, nodeId: string): Promise<ReplicaState | undefined> {
  return (await getPool(s, pool))?.replicas.find((r) => r.node_id === nodeId)?.state
}

async function waitForState(s: Stack, pool: string, nodeId: string, state: ReplicaState): Promise<void> {
  await waitFor(async () => (await stateOn(s, pool, nodeId)) === state, { timeoutMs: CEILING_MS, message: `${pool} ${state} on ${nodeId}` })
}

async function patchPolicy(s: Stack, pool: string, policy: Record<string, unknown>): Promise<void> {
  const response = await s.admin('PATCH', `/v2/pools/${pool}`, policy)
  expect(response.status, await response.clone().text()).toBe(200)
}

/** The agent's `link.command` log lines for a pool, oldest first. */
function commandsOf(agent: LinkedAgent): Array<{ command: string; time: string }> {
  return agent
    .output()
    .split('\n')
    .filter((line) => line.includes('"event":"link.command"'))
    .map((line) => JSON.parse(line) as { command: string; time: string })
}

/** An agent whose only pool stays stopped until the control plane starts it. */
async function onDemandAgent(s: Stack, pool: string, name: string, fakeArgs: string[] = []): Promise<{ agent: LinkedAgent; engineUrl: string }> {
  const port = await freePort()
  const agent = await startLinkedAgent(cleanup, s, { name, pools: [fakePoolInput(pool, fakeArgs, { slots: 1, port, preload: 'on-demand' })] })
  await waitForState(s, pool, agent.nodeId, 'stopped')
  return { agent, engineUrl: `http://127.0.0.1:${port}` }
}

const ask = (openai: OpenAI, model: string) => openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })

describe('on-demand start and idle drain', () => {
  it('starts an on-demand pool on the first request, drains it after idle_drain_ms and starts it again on demand', async () => {
    const s = stack()
    const { agent } = await onDemandAgent(s, 'lazy', 'node-lazy', ['--load-ms', '200', '--tokens', '3'])
    await patchPolicy(s, 'lazy', { preload_mode: 'on-demand', idle_drain_ms: 500 })
    const openai = openaiClient(s, (await createKey(s)).key)

    expect((await ask(openai, 'lazy')).choices[0]?.message.content).toBe(expectedText(3))
    await waitForState(s, 'lazy', agent.nodeId, 'stopped')
    expect(commandsOf(agent).map((c) => c.command)).toEqual(['preload', 'drain'])

    expect((await ask(openai, 'lazy')).choices[0]?.message.content).toBe(expectedText(3))
    expect(await stateOn(s, 'lazy', agent.nodeId)).toBe('ready')
    await waitForState(s, 'lazy', agent.nodeId, 'stopped')
    expect(commandsOf(agent).map((c) => c.command)).toEqual(['preload', 'drain', 'preload', 'drain'])
  })

  it('keeps one replica of an eager pool ready when the others drain for idleness', async () => {
    const s = stack()
    const a = await servePool(cleanup, s, 'warm', { name: 'node-a', fakeArgs: ['--tokens', '2'] })
    const b = await servePool(cleanup, s, 'warm', { name: 'node-b', fakeArgs: ['--tokens', '2'] })
    await patchPolicy(s, 'warm', { preload_mode: 'eager', idle_drain_ms: 500 })
    const states = async () => (await getPool(s, 'warm'))?.replicas.map((r) => r.state).sort()
    await waitFor(async () => JSON.stringify(await states()) === JSON.stringify(['ready', 'stopped']), {
      timeoutMs: CEILING_MS,
      message: 'one replica drained',
    })
    // The one left is never drained: watch it over several idle periods.
    const watchUntil = Date.now() + 2_000
    while (Date.now() < watchUntil) {
      expect(await states()).toEqual(['ready', 'stopped'])
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const served = await ask(openaiClient(s, (await createKey(s)).key), 'warm')
    expect(served.choices[0]?.message.content).toBe(expectedText(2))
    expect([...commandsOf(a.agent), ...commandsOf(b.agent)].map((c) => c.command)).toEqual(['drain'])
  })
})

describe('maintenance drain', () => {
  it('stays drained, across a control plane restart, until a preload', async () => {
    const s = stack()
    const { agent } = await servePool(cleanup, s, 'kept', { fakeArgs: ['--tokens', '2'] })
    const openai = openaiClient(s, (await createKey(s)).key)
    expect((await s.admin('POST', '/v2/pools/kept/drain', { deadline_ms: 5_000 })).status).toBe(202)
    await waitForState(s, 'kept', agent.nodeId, 'stopped')
    expect((await getPool(s, 'kept'))?.maintenance_drained).toBe(true)

    const refused = await ask(openai, 'kept').catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(OpenAI.APIError)
    expect(refused).toMatchObject({ status: 503, code: 'no_replica', message: expect.stringContaining('drained for maintenance; POST /v2/pools/kept/preload') })

    await s.restartControlPlane()
    const restartedAt = Date.now()
    await waitForHeartbeatAfter(s, agent.nodeId, restartedAt, CEILING_MS)
    await expect(ask(openai, 'kept')).rejects.toMatchObject({ status: 503, code: 'no_replica' })
    expect(await stateOn(s, 'kept', agent.nodeId)).toBe('stopped')
    expect(commandsOf(agent).map((c) => c.command)).toEqual(['drain'])

    expect((await s.admin('POST', '/v2/pools/kept/preload')).status).toBe(202)
    await waitForState(s, 'kept', agent.nodeId, 'ready')
    expect((await getPool(s, 'kept'))?.maintenance_drained).toBe(false)
    expect((await ask(openai, 'kept')).choices[0]?.message.content).toBe(expectedText(2))
  })
})

describe('node cordon', () => {
  it('takes no new task on a cordoned node, lets its in-flight task finish, and keeps it off after restarts until uncordoned', async () => {
    const s = stack()
    const pool = 'fleet'
    const fakeArgs = ['--tokens', '60', '--tokens-per-second', '15']
    const a = await servePool(cleanup, s, pool, { name: 'node-a', fakeArgs })
    const openai = openaiClient(s, (await createKey(s)).key)
    // The only replica takes this one; it is still streaming when the node is cordoned.
    const inFlight = ask(openai, pool)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).active === 1, { timeoutMs: CEILING_MS, message: 'the task running on node a' })
    const b = await servePool(cleanup, s, pool, { name: 'node-b', fakeArgs: ['--tokens', '2'] })

    const drained = await s.admin('POST', `/v2/nodes/${a.agent.nodeId}/drain`, { deadline_ms: 30_000 })
    expect(drained.status).toBe(202)
    expect(NodeDrainResult.parse(await drained.json())).toEqual({ node_id: a.agent.nodeId, command: 'drain', pools: [{ pool, ok: true, error: null }] })
    expect((await getNode(s, a.agent.nodeId)).cordoned_at).not.toBeNull()
    for (let i = 0; i < 4; i += 1) expect((await ask(openai, pool)).choices[0]?.message.content).toBe(expectedText(2))
    expect((await inFlight).choices[0]?.message.content).toBe(expectedText(60))
    expect((await fakeEngineStats(b.engineUrl)).completed).toBe(4)
    await waitForState(s, pool, a.agent.nodeId, 'stopped')

    // The cordon outlives a restart of the control plane and of the node's agent, whose eager pool starts again.
    await s.restartControlPlane()
    const restartedAt = Date.now()
    a.agent.process.kill('SIGTERM')
    await a.agent.process
    const again = await startLinkedAgent(cleanup, s, {
      name: 'node-a',
      node: { id: a.agent.nodeId, token: a.agent.token },
      pools: [fakePoolInput(pool, ['--tokens', '2'], { slots: 2, port: Number(new URL(a.engineUrl).port) })],
    })
    await waitForState(s, pool, again.nodeId, 'ready')
    // Node b's agent dials back after the restart on its own schedule; until then it has no replica to serve.
    await waitForHeartbeatAfter(s, b.agent.nodeId, restartedAt, CEILING_MS)
    for (let i = 0; i < 4; i += 1) expect((await ask(openai, pool)).choices[0]?.message.content).toBe(expectedText(2))
    expect((await fakeEngineStats(a.engineUrl)).completed).toBe(0)

    const lifted = await s.admin('POST', `/v2/nodes/${a.agent.nodeId}/uncordon`)
    expect(lifted.status).toBe(200)
    expect((await getNode(s, a.agent.nodeId)).cordoned_at).toBeNull()
    await waitFor(
      async () => {
        await ask(openai, pool)
        return (await fakeEngineStats(a.engineUrl)).completed > 0
      },
      { timeoutMs: CEILING_MS, message: 'a task on the uncordoned node' },
    )
  })

  it('starts an eager pool again on its uncordoned node at once, with no request to start it', async () => {
    const s = stack()
    const pool = 'comeback'
    const { agent } = await servePool(cleanup, s, pool, { fakeArgs: ['--load-ms', '200', '--tokens', '2'] })
    await patchPolicy(s, pool, { preload_mode: 'eager' })
    expect((await s.admin('POST', `/v2/nodes/${agent.nodeId}/drain`, { deadline_ms: 5_000 })).status).toBe(202)
    await waitForState(s, pool, agent.nodeId, 'stopped')

    expect((await s.admin('POST', `/v2/nodes/${agent.nodeId}/uncordon`)).status).toBe(200)
    await waitForState(s, pool, agent.nodeId, 'ready')
    expect(commandsOf(agent).map((c) => c.command)).toEqual(['drain', 'preload'])
    expect((await ask(openaiClient(s, (await createKey(s)).key), pool)).choices[0]?.message.content).toBe(expectedText(2))
  })
})

describe('rolling reload', () => {
  it('reloads two replicas one at a time and serves every request of a load test meanwhile', async () => {
    const s = stack()
    const pool = 'rolling'
    // Fixed ports: each replica's reload drains it and starts it again, a gap on that node.
    const fakeArgs = ['--load-ms', '300', '--tokens', '4', '--tokens-per-second', '100']
    const a = await servePool(cleanup, s, pool, { name: 'node-a', fakeArgs })
    const b = await servePool(cleanup, s, pool, { name: 'node-b', fakeArgs })
    const openai = openaiClient(s, (await createKey(s)).key)

    let loading = true
    const outcomes: string[] = []
    const client = async () => {
      while (loading) {
        const reply = await ask(openai, pool).then(
          (r) => r.choices[0]?.message.content ?? '',
          (error: unknown) => `error: ${String(error)}`,
        )
        outcomes.push(reply)
      }
    }
    const clients = Array.from({ length: 3 }, client)
    await waitFor(() => outcomes.length >= 3, { timeoutMs: CEILING_MS, message: 'the load running' })

    const response = await s.admin('POST', `/v2/pools/${pool}/reload`, { deadline_ms: 10_000 })
    expect(response.status).toBe(202)
    const result = PoolCommandResult.parse(await response.json())
    expect(result.rolling_order?.length).toBe(2)
    const readyCounts: number[] = []
    const steps = new Set<string>()
    const reloaded = () => commandsOf(a.agent).length === 2 && commandsOf(b.agent).length === 2
    await waitFor(
      async () => {
        const view = await getPool(s, pool)
        const ready = (view?.replicas ?? []).filter((r) => r.state === 'ready').length
        readyCounts.push(ready)
        if (view?.rolling_reload) steps.add(`${view.rolling_reload.node_id}:${view.rolling_reload.phase}`)
        return reloaded() && ready === 2 && view?.rolling_reload === null
      },
      { timeoutMs: 3 * CEILING_MS, intervalMs: 10, message: 'both replicas reloaded and ready' },
    )
    const served = outcomes.length
    await waitFor(() => outcomes.length >= served + 3, { timeoutMs: CEILING_MS, message: 'load served after the reload' })
    loading = false
    await Promise.all(clients)

    expect(outcomes.filter((o) => o !== expectedText(4))).toEqual([])
    expect(Math.min(...readyCounts)).toBe(1)
    expect(steps.size).toBeGreaterThan(0)
    // One node at a time: the second drains only once the first is up again.
    const [first, second] = result.rolling_order === undefined ? [] : result.rolling_order.map((id) => (id === a.agent.nodeId ? a.agent : b.agent))
    if (!first || !second) throw new Error('expected two nodes in the rolling order')
    expect(commandsOf(first).map((c) => c.command)).toEqual(['drain', 'preload'])
    expect(commandsOf(second).map((c) => c.command)).toEqual(['drain', 'preload'])
    const firstReadyAt = first
      .output()
      .split('\n')
      .filter((line) => line.includes('"event":"replica.state"') && line.includes('"to":"ready"'))
      .map((line) => (JSON.parse(line) as { time: string }).time)
      .at(-1)
    expect(firstReadyAt).toBeDefined()
    expect(String(firstReadyAt) <= (commandsOf(second)[0]?.time ?? '')).toBe(true)
  })
})

describe('scale out', () => {
  it('starts a stopped replica on another node when the predicted wait exceeds the threshold, and drains it again when idle', async () => {
    const s = stack()
    const pool = 'burst'
    const fakeArgs = ['--tokens', '20', '--tokens-per-second', '40']
    const a = await servePool(cleanup, s, pool, { name: 'node-a', slots: 1, fakeArgs })
    const b = await onDemandAgent(s, pool, 'node-b', fakeArgs)
    await patchPolicy(s, pool, { scale_out_wait_ms: 100, idle_drain_ms: 1_000, preload_mode: 'eager' })
    const openai = openaiClient(s, (await createKey(s)).key)

    const replies = await Promise.all(Array.from({ length: 6 }, () => ask(openai, pool)))
    for (const reply of replies) expect(reply.choices[0]?.message.content).toBe(expectedText(20))
    expect(commandsOf(b.agent).map((c) => c.command)[0]).toBe('preload')
    const onA = (await fakeEngineStats(a.engineUrl)).completed
    const onB = await fakeEngineStats(b.engineUrl).then(
      (stats) => stats.completed,
      () => 0,
    )
    expect(onA + onB).toBe(6)
    expect(onB).toBeGreaterThan(0)

    // Idle again: one replica is drained, the eager pool keeps the other.
    await waitFor(
      async () => {
        const states = (await getPool(s, pool))?.replicas.map((r) => r.state).sort()
        return JSON.stringify(states) === JSON.stringify(['ready', 'stopped'])
      },
      { timeoutMs: CEILING_MS, message: 'scaled back in to one ready replica' },
    )
  })
})
