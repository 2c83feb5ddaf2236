/**
 * An agent simulated in the test process over the real wire protocol: it says hello with ready
 * replicas, heartbeats on the interval the welcome gives, and records the dispatches and cancels
 * it gets without running anything. Cheap enough to connect a thousand at once.
 */
import WebSocket from 'ws'
import { PROTOCOL_VERSION, parseControlFrame } from '../../protocol/index.ts'
import type { AgentFrame, EngineKind, ReplicaReport } from '../../protocol/index.ts'

/** How long one simulated agent waits for its welcome before the attempt counts as failed. */
export const SIMULATED_WELCOME_TIMEOUT_MS = 60_000

export interface SimulatedPool {
  id: string
  engine: EngineKind
  slots: number
}

export interface SimulatedAgent {
  /** Milliseconds from dialling to the welcome. */
  welcomeMs: number
  /** Task ids of the dispatches received, in order. */
  readonly dispatched: string[]
  /** Task ids the control plane cancelled, in order. */
  readonly cancelled: string[]
  /** Drops the connection without a Close frame, as a crash would. */
  close(): void
  /** Sends a Close frame (1000) as a stopping agent does; resolves with the code the control plane answered. */
  closeCleanly(): Promise<number>
}

export type ConnectResult = { ok: true; agent: SimulatedAgent } | { ok: false; status: number; ms: number; error: string }

function replicaOf(pool: SimulatedPool): ReplicaReport {
  return { pool: pool.id, engine: pool.engine, state: 'ready', slots: pool.slots, slots_busy: 0, engine_version: null, reason: null, breaker_open: false }
}

/**
 * Connects one simulated agent with `token` to the control plane at `url` and resolves once it is
 * welcomed, or with the HTTP status (0: no answer) and error of a refused or failed connect.
 * It never lists a dispatched task as running: to the control plane it swallows every dispatch.
 */
export function connectSimulatedAgent(url: URL, token: string, pools: readonly SimulatedPool[]): Promise<ConnectResult> {
  const startedAt = performance.now()
  const dispatched: string[] = []
  const cancelled: string[] = []
  const ws = new WebSocket(new URL('/v2/agent/connect', url).toString().replace(/^http/, 'ws'), { headers: { Authorization: `Bearer ${token}` } })
  let heartbeat: NodeJS.Timeout | null = null
  const send = (frame: AgentFrame) => ws.send(JSON.stringify(frame))
  const replicas = pools.map(replicaOf)
  const close = () => {
    if (heartbeat) clearInterval(heartbeat)
    ws.terminate()
  }
  return new Promise<ConnectResult>((resolve) => {
    const fail = (status: number, error: string) => {
      clearTimeout(timer)
      close()
      resolve({ ok: false, status, ms: Math.round(performance.now() - startedAt), error })
    }
    const timer = setTimeout(() => fail(0, `no welcome within ${SIMULATED_WELCOME_TIMEOUT_MS} ms`), SIMULATED_WELCOME_TIMEOUT_MS)
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      response.on('end', () => fail(response.statusCode ?? 0, body.slice(0, 512)))
    })
    ws.on('error', (error) => fail(0, error.message))
    ws.on('close', () => heartbeat && clearInterval(heartbeat))
    ws.on('open', () =>
      send({ type: 'hello', protocol: PROTOCOL_VERSION, agent_version: 'simulated', hostname: 'simulated', gpus: [], replicas, running_tasks: [] }),
    )
    ws.on('message', (data) => {
      const parsed = parseControlFrame(data.toString())
      if (!parsed.ok) return
      const frame = parsed.frame
      if (frame.type === 'dispatch') dispatched.push(frame.task_id)
      if (frame.type === 'cancel') cancelled.push(frame.task_id)
      if (frame.type === 'preload' || frame.type === 'drain' || frame.type === 'reload') send({ type: 'ack', command_id: frame.command_id, ok: true })
      if (frame.type !== 'welcome') return
      clearTimeout(timer)
      heartbeat = setInterval(() => send({ type: 'heartbeat', replicas, gpus: [], running_tasks: [] }), frame.heartbeat_interval_ms)
      const closeCleanly = () => {
        if (heartbeat) clearInterval(heartbeat)
        const answered = new Promise<number>((settle) => ws.once('close', (code) => settle(code)))
        ws.close(1000, 'agent stopping')
        return answered
      }
      resolve({ ok: true, agent: { welcomeMs: Math.round(performance.now() - startedAt), dispatched, cancelled, close, closeCleanly } })
    })
  })
}
