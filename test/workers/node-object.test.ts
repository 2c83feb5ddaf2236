import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { eq } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import { registryFor } from '../../control-plane/registry/registry-for.ts'
import { nodes } from '../../db/schema.ts'
import { MAX_CANCELS_PER_FRAME } from '../../control-plane/node-object.ts'
import { CLOSE_CODES, NodeView } from '../../protocol/index.ts'
import type { ReplicaReport } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, createNode, hello, open } from './agent-socket.ts'
import { call, uniqueName } from './support.ts'

function replica(pool: string): ReplicaReport {
  return { pool, engine: 'openai', state: 'ready', slots: 1, slots_busy: 0, breaker_open: false }
}

async function nodeStatus(id: string): Promise<string> {
  return NodeView.parse(await (await call('GET', `/v2/nodes/${id}`)).json()).status
}

/** Moves the node's last heartbeat into the past, as if the agent had been silent that long. */
async function silenceFor(nodeId: string, ms: number): Promise<void> {
  await runInDurableObject(env.NODES.getByName(nodeId), (_instance, state) => {
    state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'last_heartbeat_at'`, String(Date.now() - ms))
  })
}

describe('NodeObject', () => {
  it('welcomes the agent and arms the offline alarm even when a registry write fails during hello', async () => {
    const node = await createNode()
    const agent = await open(node.token)
    // The node row disappears after the token check: writing its replica now breaks a foreign key.
    const db = registryFor(env)
    await db.delete(nodes).where(eq(nodes.id, node.id))
    agent.send(hello({ replicas: [replica(uniqueName('model'))] }))
    expect(await agent.next()).toMatchObject({ type: 'welcome', node_id: node.id })
    expect(await runDurableObjectAlarm(env.NODES.getByName(node.id))).toBe(true)
    agent.ws.close(1000, 'done')
  })

  it('keeps the agent socket across eviction and still reaches the agent afterwards', async () => {
    const node = await createNode()
    const pool = uniqueName('model')
    const agent = await open(node.token)
    agent.send(hello({ replicas: [replica(pool)] }))
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    const stub = env.NODES.getByName(node.id)
    await evictDurableObject(stub, { webSockets: 'hibernate' })

    agent.send({ type: 'heartbeat', replicas: [replica(pool)], gpus: [], running_tasks: [] })
    const command = stub.command({ command: 'preload', pool })
    const frame = await agent.next()
    expect(frame).toMatchObject({ type: 'preload', pool })
    if (frame.type !== 'preload') throw new Error('expected a preload frame')
    agent.send({ type: 'ack', command_id: frame.command_id, ok: true })
    expect(await command).toEqual({ ok: true, error: null })
    expect(await nodeStatus(node.id)).toBe('online')
    agent.ws.close(1000, 'done')
  })

  it('marks the node offline and closes its socket when the alarm finds three heartbeats missed', async () => {
    const node = await createNode()
    const agent = await open(node.token)
    agent.send(hello())
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    const stub = env.NODES.getByName(node.id)

    // Inside the window the alarm only re-arms itself.
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    expect(await nodeStatus(node.id)).toBe('online')

    await silenceFor(node.id, 10 * 60_000)
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    expect((await agent.closed).code).toBe(CLOSE_CODES.helloTimeout)
    await expect.poll(() => nodeStatus(node.id), { timeout: EVENT_CEILING_MS }).toBe('offline')
  })
})

describe('PATCH /v2/pools/{id}', () => {
  it('takes every policy field and refuses a bad value or an unknown field with a 400 naming it', async () => {
    const node = await createNode()
    const pool = uniqueName('model')
    const agent = await open(node.token)
    agent.send(hello({ replicas: [replica(pool)] }))
    expect(await agent.next()).toMatchObject({ type: 'welcome' })

    const refused = [
      { queue_capacity: -1 },
      { preload_mode: 'lazy' },
      { idle_drain_ms: 5 },
      { default_priority: 'urgent' },
      { first_token_timeout_ms: 'soon' },
      { idle_timeout_ms: 0 },
      { queue_timeout_ms: 1.5 },
      { run_timeout_ms: 100_000_000 },
      { scale_out_wait_ms: null },
      { min_replicas: 2 },
    ]
    for (const field of refused) {
      const response = await call('PATCH', `/v2/pools/${pool}`, { body: field })
      expect(response.status, JSON.stringify(field)).toBe(400)
      const body = await response.text()
      expect(body).toContain(Object.keys(field)[0])
    }
    const policy = {
      queue_capacity: 3,
      preload_mode: 'on-demand',
      idle_drain_ms: 60_000,
      queue_timeout_ms: 300_000,
      run_timeout_ms: 1_200_000,
      scale_out_wait_ms: 2_000,
    }
    const accepted = await call('PATCH', `/v2/pools/${pool}`, { body: policy })
    expect(accepted.status).toBe(200)
    expect(await accepted.json()).toMatchObject({
      policy: { ...policy, default_priority: 'interactive', first_token_timeout_ms: 60_000, idle_timeout_ms: 30_000 },
    })
    agent.ws.close(1000, 'done')
  })
})

describe('NodeObject and unknown tasks', () => {
  it('answers a heartbeat listing 65,536 tasks it never dispatched with a bounded number of cancels', async () => {
    const node = await createNode()
    const agent = await open(node.token)
    agent.send(hello())
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    const running = Array.from({ length: 65_536 }, (_, i) => `ghost-${i}`)
    agent.send({ type: 'heartbeat', replicas: [], gpus: [], running_tasks: running })
    const cancels: string[] = []
    for (let i = 0; i < MAX_CANCELS_PER_FRAME; i++) {
      const frame = await agent.next()
      if (frame.type === 'cancel') cancels.push(frame.task_id)
    }
    expect(cancels).toEqual(running.slice(0, MAX_CANCELS_PER_FRAME))
    // Nothing else follows: the next frame is the answer to a command sent after the heartbeat.
    const command = env.NODES.getByName(node.id).command({ command: 'preload', pool: 'any' })
    const next = await agent.next()
    expect(next).toMatchObject({ type: 'preload' })
    if (next.type === 'preload') agent.send({ type: 'ack', command_id: next.command_id, ok: true })
    expect(await command).toEqual({ ok: true, error: null })
    agent.ws.close(1000, 'done')
  })
})
