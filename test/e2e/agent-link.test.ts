import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import type { WebSocket } from 'ws'
import { CLOSE_CODES, PROTOCOL_VERSION, parseAgentFrame } from '../../protocol/index.ts'
import type { AgentFrame } from '../../protocol/index.ts'
import { fakePoolInput, spawnAgentCli } from '../support/agents.ts'
import { isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const TOKEN = 'lln.node_AAAAAAAAAAAA.' + 'x'.repeat(43)
const WELCOME = JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, node_id: 'node_AAAAAAAAAAAA', heartbeat_interval_ms: 50 })

/**
 * A stand-in control plane that sends what the real one never would (garbage, invalid frames,
 * refusals, silence), to show the agent survives them. It answers hello with a welcome only from
 * connection number `welcomeFrom` on. The real control plane is in the other e2e tests.
 */
async function standInControlPlane({ refuseUpgrade = false, welcomeFrom = Infinity } = {}) {
  const frames: AgentFrame[] = []
  const sockets: WebSocket[] = []
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info, done) => (refuseUpgrade ? done(false, 401, 'unknown node token') : done(info.req.headers.authorization === `Bearer ${TOKEN}`, 401)),
  })
  server.on('connection', (ws) => {
    sockets.push(ws)
    const connection = sockets.length
    ws.on('message', (data) => {
      const parsed = parseAgentFrame(data.toString())
      if (!parsed.ok) return
      frames.push(parsed.frame)
      if (parsed.frame.type === 'hello' && connection >= welcomeFrom) ws.send(WELCOME)
    })
  })
  await once(server, 'listening')
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('the stand-in control plane has no port')
  const { port } = address
  return {
    url: `ws://127.0.0.1:${port}`,
    frames,
    sockets,
    connections: () => sockets.length,
    latest: () => sockets.at(-1),
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of sockets) ws.terminate()
        server.close(() => resolve())
      }),
  }
}

describe('agent link robustness', () => {
  const cleanup = useProcessCleanup()
  const servers: Array<{ close(): Promise<void> }> = []
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close()
  })

  function startAgent(url: string, fields: Record<string, unknown> = {}) {
    const stateDir = cleanup.stateDir()
    const configFile = path.join(stateDir, 'agent.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        control_plane_url: url,
        node_token: TOKEN,
        state_dir: stateDir,
        log_level: 'debug',
        reconnect_max_ms: 200,
        pools: [fakePoolInput('link-model')],
        ...fields,
      }),
    )
    return spawnAgentCli(cleanup, configFile)
  }

  it('says hello, answers malformed frames with error frames, and heartbeats once welcomed', async () => {
    const cp = await standInControlPlane()
    servers.push(cp)
    const agent = startAgent(cp.url)
    const hello = await waitFor(() => cp.frames.find((f) => f.type === 'hello'), { message: 'hello' })
    expect(hello).toMatchObject({ type: 'hello', protocol: PROTOCOL_VERSION, replicas: [{ pool: 'link-model', engine: 'command' }], running_tasks: [] })

    cp.latest()?.send('{not json')
    cp.latest()?.send(JSON.stringify({ type: 'dispatch', task_id: 't1' }))
    cp.latest()?.send(JSON.stringify({ type: 'format_disk' }))
    const errors = await waitFor(
      () => {
        const seen = cp.frames.filter((f) => f.type === 'error')
        return seen.length === 3 ? seen : null
      },
      { message: 'three error frames' },
    )
    expect(errors.map((e) => e.type === 'error' && e.message)).toEqual([
      'frame is not valid JSON',
      expect.stringContaining('invalid "dispatch" frame'),
      expect.stringContaining('invalid "format_disk" frame'),
    ])

    cp.latest()?.send(WELCOME)
    await waitFor(() => cp.frames.filter((f) => f.type === 'heartbeat').length >= 2, { message: 'heartbeats' })
    expect(isAlive(agent.pid)).toBe(true)
    expect(cp.connections()).toBe(1)
  })

  it('logs a protocol refusal with its reason and keeps reconnecting', async () => {
    const cp = await standInControlPlane()
    servers.push(cp)
    const agent = startAgent(cp.url)
    await waitFor(() => cp.frames.find((f) => f.type === 'hello'), { message: 'hello' })
    cp.latest()?.close(CLOSE_CODES.protocolMismatch, 'protocol 1 unsupported; control plane speaks 2')
    await waitFor(() => cp.connections() >= 2, { message: 'a reconnect' })
    expect(agent.output()).toContain('protocol 1 unsupported; control plane speaks 2')
    expect(isAlive(agent.pid)).toBe(true)
  })

  it('drops the socket and reconnects when the control plane never answers hello', async () => {
    const cp = await standInControlPlane({ welcomeFrom: 2 })
    servers.push(cp)
    const agent = startAgent(cp.url, { welcome_timeout_ms: 100 })
    await waitFor(() => cp.frames.find((f) => f.type === 'hello'), { message: 'hello' })
    const silent = await waitFor(() => cp.latest(), { message: 'the first connection' })
    await waitFor(() => cp.connections() >= 2, { timeoutMs: 10_000, message: 'a second connection after the welcome timeout' })
    await waitFor(() => silent.readyState === silent.CLOSED, { message: 'the silent connection to close' })
    expect(agent.output()).toContain('"event":"link.welcome_timeout"')
    // Welcomed on the second connection, the link keeps it well past the welcome timeout.
    await waitFor(() => cp.frames.filter((f) => f.type === 'heartbeat').length >= 6, { message: 'heartbeats on the second connection' })
    expect(cp.connections()).toBe(2)
    expect(cp.frames.filter((f) => f.type === 'hello')).toHaveLength(2)
    expect(isAlive(agent.pid)).toBe(true)
  })

  it('logs a refused token and keeps retrying without crashing', async () => {
    const cp = await standInControlPlane({ refuseUpgrade: true })
    servers.push(cp)
    const agent = startAgent(cp.url)
    await waitFor(() => agent.output().split('"event":"link.refused"').length > 2, { message: 'two refused attempts' })
    expect(agent.output()).toContain('"status":401')
    expect(isAlive(agent.pid)).toBe(true)
  })
})
