import { env } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { CreateNodeResponse, PROTOCOL_VERSION, parseControlFrame } from '../../protocol/index.ts'
import type { ControlFrame, Hello } from '../../protocol/index.ts'
import { call, readyReplica, uniqueName } from './support.ts'

export const EVENT_CEILING_MS = 10_000

/** An agent's end of the socket, driven by a test in workerd. */
export interface AgentSocket {
  ws: WebSocket
  next(): Promise<ControlFrame>
  closed: Promise<{ code: number; reason: string }>
  send(frame: unknown): void
}

export async function createNode(): Promise<{ id: string; token: string }> {
  const response = await call('POST', '/v2/nodes', { body: { name: uniqueName('node') } })
  return CreateNodeResponse.parse(await response.json())
}

export async function connect(token: string): Promise<Response> {
  return exports.default.fetch('https://llorch.test/v2/agent/connect', { headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` } })
}

export async function open(token: string): Promise<AgentSocket> {
  const response = await connect(token)
  const ws = response.webSocket
  if (!ws) throw new Error(`expected an upgrade, got ${response.status}`)
  ws.accept()
  const inbox: ControlFrame[] = []
  const waiting: Array<(frame: ControlFrame) => void> = []
  ws.addEventListener('message', (event) => {
    const parsed = parseControlFrame(typeof event.data === 'string' ? event.data : '')
    if (!parsed.ok) throw new Error(parsed.error.message)
    const resolve = waiting.shift()
    if (resolve) resolve(parsed.frame)
    else inbox.push(parsed.frame)
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })))
  return {
    ws,
    closed,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: () => {
      const queued = inbox.shift()
      if (queued) return Promise.resolve(queued)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no frame within the ceiling')), EVENT_CEILING_MS)
        waiting.push((frame) => {
          clearTimeout(timer)
          resolve(frame)
        })
      })
    },
  }
}

export function hello(overrides: Partial<Hello> = {}): Hello {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    agent_version: '0.1.0',
    hostname: 'gpu-box-1',
    gpus: [{ index: 0, name: 'NVIDIA H100', memory_total_mib: 81559, memory_used_mib: 1024 }],
    replicas: [],
    running_tasks: [],
    ...overrides,
  }
}

/** A node whose agent says hello with a ready single-slot replica of `pool`, once the pool has seen it. */
export async function linkedAgent(pool: string): Promise<AgentSocket> {
  const node = await createNode()
  const agent = await open(node.token)
  agent.send(hello({ replicas: [readyReplica(pool)] }))
  const welcome = await agent.next()
  if (welcome.type !== 'welcome') throw new Error(`expected welcome, got ${welcome.type}`)
  const deadline = Date.now() + EVENT_CEILING_MS
  while ((await env.POOLS.getByName(pool).status()).replicas.length === 0) {
    if (Date.now() > deadline) throw new Error('the pool never saw the replica')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return agent
}
