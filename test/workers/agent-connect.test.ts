import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { CLOSE_CODES, NodeView, PROTOCOL_VERSION, PoolView } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, connect, createNode, hello, open } from './agent-socket.ts'
import { call, uniqueName } from './support.ts'

describe('GET /v2/agent/connect', () => {
  it('refuses a request without a node token with 401, upgrade or not', async () => {
    expect((await exports.default.fetch('https://llorch.test/v2/agent/connect')).status).toBe(401)
    expect((await exports.default.fetch('https://llorch.test/v2/agent/connect', { headers: { Upgrade: 'websocket' } })).status).toBe(401)
  })

  it('refuses unknown and revoked node tokens with 401 before the upgrade', async () => {
    expect((await connect('lln.node_AAAAAAAAAAAA.' + 'A'.repeat(43))).status).toBe(401)
    const node = await createNode()
    await call('DELETE', `/v2/nodes/${node.id}`)
    expect((await connect(node.token)).status).toBe(401)
  })

  it('answers hello with welcome and shows the node online with its GPUs and pools', async () => {
    const node = await createNode()
    const pool = uniqueName('model')
    const agent = await open(node.token)
    agent.send(
      hello({ replicas: [{ pool, engine: 'llamacpp', state: 'ready', slots: 2, slots_busy: 0, engine_version: 'b5000', reason: null, breaker_open: false }] }),
    )
    expect(await agent.next()).toEqual({ type: 'welcome', protocol: PROTOCOL_VERSION, node_id: node.id, heartbeat_interval_ms: expect.any(Number) })

    // The welcome does not wait for the registry; what it records follows.
    const nodeView = async () => NodeView.parse(await (await call('GET', `/v2/nodes/${node.id}`)).json())
    await expect.poll(async () => (await nodeView()).hostname).toBe('gpu-box-1')
    const view = await nodeView()
    expect(view).toMatchObject({ status: 'online', hostname: 'gpu-box-1', agent_version: '0.1.0', gpus: [{ name: 'NVIDIA H100' }] })
    expect(view.replicas).toMatchObject([{ pool, state: 'ready', slots: 2, engine: 'llamacpp', engine_version: 'b5000' }])

    const poolView = PoolView.parse(await (await call('GET', `/v2/pools/${pool}`)).json())
    expect(poolView).toMatchObject({ id: pool, engine: 'llamacpp', state: 'ready', slots_total: 2, slots_busy: 0, queue_depth: 0 })
    agent.ws.close(1000, 'done')
  })

  it('answers a malformed frame with an error frame and keeps the connection', async () => {
    const node = await createNode()
    const agent = await open(node.token)
    agent.send('{not json')
    expect(await agent.next()).toMatchObject({ type: 'error', code: 'invalid_request', message: 'frame is not valid JSON' })
    agent.send({ type: 'heartbeat' })
    expect(await agent.next()).toMatchObject({ type: 'error', code: 'invalid_request' })
    agent.send(hello())
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    agent.ws.close(1000, 'done')
  })

  it('closes with a clear reason when the agent speaks another protocol version, the old major 1 included', async () => {
    for (const protocol of [1, PROTOCOL_VERSION + 1]) {
      const node = await createNode()
      const agent = await open(node.token)
      agent.send(hello({ protocol }))
      expect(await agent.next()).toMatchObject({ type: 'error', code: 'protocol_mismatch' })
      const closed = await agent.closed
      expect(closed.code).toBe(CLOSE_CODES.protocolMismatch)
      expect(closed.reason).toBe(`protocol ${protocol} unsupported; control plane speaks ${PROTOCOL_VERSION}`)
    }
  })

  it('refuses a replica whose pool is already served by another engine kind', async () => {
    const pool = uniqueName('model')
    const first = await open((await createNode()).token)
    first.send(hello({ replicas: [{ pool, engine: 'vllm', state: 'ready', slots: 1, slots_busy: 0, breaker_open: false }] }))
    expect(await first.next()).toMatchObject({ type: 'welcome' })
    await expect.poll(async () => (await call('GET', `/v2/pools/${pool}`)).status).toBe(200)

    const second = await open((await createNode()).token)
    second.send(hello({ replicas: [{ pool, engine: 'llamacpp', state: 'ready', slots: 1, slots_busy: 0, breaker_open: false }] }))
    // Welcomed first (no registry round trip before it), then told which replica is refused.
    expect(await second.next()).toMatchObject({ type: 'welcome' })
    const refusal = await second.next()
    expect(refusal).toMatchObject({ type: 'error', code: 'conflict' })
    expect(refusal.type === 'error' && refusal.message).toContain('served by vllm engines')

    const poolView = PoolView.parse(await (await call('GET', `/v2/pools/${pool}`)).json())
    expect(poolView.replicas).toHaveLength(1)
    first.ws.close(1000, 'done')
    second.ws.close(1000, 'done')
  })

  it('replaces an older connection from the same node and marks the node offline when the socket closes', async () => {
    const node = await createNode()
    const older = await open(node.token)
    older.send(hello())
    expect(await older.next()).toMatchObject({ type: 'welcome' })
    const newer = await open(node.token)
    expect((await older.closed).code).toBe(CLOSE_CODES.replaced)
    newer.send(hello())
    expect(await newer.next()).toMatchObject({ type: 'welcome' })
    expect(NodeView.parse(await (await call('GET', `/v2/nodes/${node.id}`)).json()).status).toBe('online')
    newer.ws.close(1000, 'agent stopping')
    await expect
      .poll(async () => NodeView.parse(await (await call('GET', `/v2/nodes/${node.id}`)).json()).status, { timeout: EVENT_CEILING_MS })
      .toBe('offline')
  })

  it('disconnects an agent whose node is revoked', async () => {
    const node = await createNode()
    const agent = await open(node.token)
    agent.send(hello())
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    await call('DELETE', `/v2/nodes/${node.id}`)
    expect(await agent.closed).toEqual({ code: CLOSE_CODES.revoked, reason: 'node token revoked' })
  })
})
