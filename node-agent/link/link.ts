import { hostname } from 'node:os'
import WebSocket from 'ws'
import { CLOSE_CODES, LlorchError, PROTOCOL_VERSION, parseControlFrame } from '../../protocol/index.ts'
import type { AgentFrame, Cancel, ControlFrame, Dispatch, Drain, EngineCall, GpuInfo, Preload, Reload, TaskEvent } from '../../protocol/index.ts'
import { RECONNECT_MAX_MS, WELCOME_TIMEOUT_MS } from '../config/schema.ts'
import type { Log } from '../log/log.ts'
import type { LinkMetrics, LinkedAgent } from './linked-agent.ts'
import { backoffDelayMs } from '../supervisor/backoff.ts'

/** First reconnect delay ceiling; it doubles per failed attempt up to `RECONNECT_MAX_MS`. */
export const RECONNECT_INITIAL_MS = 500
/** How long the WebSocket handshake may take before the attempt counts as failed. */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** Task events kept while the control plane is unreachable; the oldest go first past this. */
export const MAX_BUFFERED_FRAMES = 10_000

export type LinkState = 'connecting' | 'open' | 'welcomed' | 'closed'

export interface LinkOptions {
  /** `wss://`, `ws://`, `https://` or `http://` URL of the control plane. */
  url: string
  token: string
  agent: LinkedAgent
  log: Log
  version: string
  readGpus(): Promise<GpuInfo[]>
  reconnect?: { initialMs?: number; maxMs?: number }
  /** How long to wait for the welcome after hello (default `WELCOME_TIMEOUT_MS`). */
  welcomeTimeoutMs?: number
  random?: () => number
  metrics?: LinkMetrics
}

/** The agent endpoint on the control plane, as a WebSocket URL. */
export function connectUrl(controlPlaneUrl: string): string {
  const url = new URL(controlPlaneUrl)
  if (url.protocol === 'https:') url.protocol = 'wss:'
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (!url.pathname.endsWith('/v2/agent/connect')) url.pathname = `${url.pathname.replace(/\/$/, '')}/v2/agent/connect`
  return url.toString()
}

/**
 * The agent's one outbound WebSocket to the control plane: hello and heartbeats, commands,
 * dispatched tasks and their events. It reconnects forever with full-jitter backoff and says
 * hello again after every reconnect with its replicas and running tasks.
 */
export class Link {
  readonly #options: LinkOptions
  readonly #log: Log
  readonly #url: string
  readonly #buffered: AgentFrame[] = []
  readonly #unsubscribe: () => void
  #ws: WebSocket | null = null
  #state: LinkState = 'closed'
  #attempt = 0
  #stopped = false
  #heartbeat: NodeJS.Timeout | null = null
  #reconnect: NodeJS.Timeout | null = null
  #welcomeTimer: NodeJS.Timeout | null = null
  #gpus: GpuInfo[] = []
  #droppedWhileDown = 0
  readonly #waiters = new Set<() => void>()
  /** Tasks the control plane stopped: it ended their streams itself, so what their relay yields after is not sent. */
  readonly #stoppedByControlPlane = new Set<string>()

  constructor(options: LinkOptions) {
    this.#options = options
    this.#log = options.log.child({ component: 'link' })
    this.#url = connectUrl(options.url)
    this.#unsubscribe = options.agent.onReplicaChange((report, previous) => {
      if (this.#state === 'welcomed') this.#send({ type: 'replica_state', replica: report, previous })
    })
  }

  get state(): LinkState {
    return this.#state
  }

  /** Starts connecting; returns at once. */
  start(): void {
    this.#stopped = false
    this.#connect()
  }

  /** Resolves once the control plane has welcomed this agent (for callers that must wait). */
  welcomed(): Promise<void> {
    if (this.#state === 'welcomed') return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add(resolve))
  }

  /** Closes the socket and stops reconnecting. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe()
    if (this.#reconnect) clearTimeout(this.#reconnect)
    this.#stopWelcomeTimer()
    this.#stopHeartbeat()
    const ws = this.#ws
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve())
      ws.close(1000, 'agent stopping')
      setTimeout(() => {
        ws.terminate()
        resolve()
      }, HANDSHAKE_TIMEOUT_MS).unref()
    })
  }

  #connect(): void {
    if (this.#stopped) return
    this.#state = 'connecting'
    // No permessage-deflate: compressing every small frame cost the agent more CPU than the relay itself (and workerd as much to inflate it).
    const ws = new WebSocket(this.#url, {
      headers: { Authorization: `Bearer ${this.#options.token}` },
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
    })
    this.#ws = ws
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8').slice(0, 2048)))
      response.on('end', () => {
        const level = response.statusCode === 401 || response.statusCode === 403 ? 'error' : 'warn'
        this.#log[level]('link.refused', { url: this.#url, status: response.statusCode, body: body.slice(0, 512) })
        ws.terminate()
      })
    })
    ws.on('open', () => void this.#onOpen(ws))
    ws.on('message', (data, isBinary) => this.#onMessage(ws, isBinary ? new Uint8Array() : data.toString()))
    ws.on('error', (error) => this.#log.warn('link.error', { url: this.#url, err: error.message }))
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString()))
  }

  async #onOpen(ws: WebSocket): Promise<void> {
    this.#state = 'open'
    this.#log.info('link.open', { url: this.#url })
    this.#gpus = await this.#options.readGpus().catch(() => this.#gpus)
    if (ws !== this.#ws || ws.readyState !== WebSocket.OPEN) return
    this.#sendNow(ws, {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agent_version: this.#options.version,
      hostname: hostname(),
      gpus: this.#gpus,
      replicas: this.#options.agent.replicas(),
      running_tasks: this.#options.agent.runningTasks(),
    })
    this.#startWelcomeTimer(ws)
  }

  /** A control plane that took the socket but never answers hello would otherwise hold the agent forever. */
  #startWelcomeTimer(ws: WebSocket): void {
    this.#stopWelcomeTimer()
    const timeoutMs = this.#options.welcomeTimeoutMs ?? WELCOME_TIMEOUT_MS
    this.#welcomeTimer = setTimeout(() => {
      this.#welcomeTimer = null
      if (ws !== this.#ws || this.#state === 'welcomed') return
      this.#log.warn('link.welcome_timeout', { url: this.#url, timeout_ms: timeoutMs })
      ws.terminate()
    }, timeoutMs)
  }

  #stopWelcomeTimer(): void {
    if (this.#welcomeTimer) clearTimeout(this.#welcomeTimer)
    this.#welcomeTimer = null
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return
    const wasWelcomed = this.#state === 'welcomed'
    this.#state = 'closed'
    this.#ws = null
    this.#stopWelcomeTimer()
    this.#stopHeartbeat()
    if (this.#stopped) return
    const refused = code === CLOSE_CODES.revoked || code === CLOSE_CODES.protocolMismatch || code === CLOSE_CODES.unauthorized
    if (refused) this.#attempt = Math.max(this.#attempt, 16)
    const delay = backoffDelayMs({
      attempt: this.#attempt,
      initialMs: this.#options.reconnect?.initialMs ?? RECONNECT_INITIAL_MS,
      maxMs: this.#options.reconnect?.maxMs ?? RECONNECT_MAX_MS,
      ...(this.#options.random ? { random: this.#options.random } : {}),
    })
    this.#attempt += 1
    this.#options.metrics?.reconnectScheduled()
    this.#log[refused ? 'error' : wasWelcomed ? 'warn' : 'info']('link.closed', { code, reason, reconnect_in_ms: delay, attempt: this.#attempt })
    this.#reconnect = setTimeout(() => this.#connect(), delay)
  }

  #onMessage(ws: WebSocket, raw: string | Uint8Array): void {
    const parsed = parseControlFrame(raw)
    if (!parsed.ok) {
      this.#log.warn('link.invalid_frame', { message: parsed.error.message })
      this.#sendNow(ws, parsed.error)
      return
    }
    this.#onFrame(ws, parsed.frame)
  }

  #onFrame(ws: WebSocket, frame: ControlFrame): void {
    switch (frame.type) {
      case 'welcome':
        this.#state = 'welcomed'
        this.#attempt = 0
        this.#stopWelcomeTimer()
        this.#log.info('link.welcomed', { node: frame.node_id, heartbeat_interval_ms: frame.heartbeat_interval_ms })
        this.#startHeartbeat(ws, frame.heartbeat_interval_ms)
        this.#flushBuffered(ws)
        for (const resolve of this.#waiters) resolve()
        this.#waiters.clear()
        return
      case 'preload':
      case 'drain':
      case 'reload':
        return this.#onCommand(ws, frame)
      case 'dispatch':
        void this.#onDispatch(frame)
        return
      case 'cancel':
        return this.#onCancel(frame)
      case 'error':
        this.#log.warn('link.control_plane_error', { code: frame.code, message: frame.message })
        return
    }
  }

  /** Commands are acked once accepted; their progress shows as replica_state frames. */
  #onCommand(ws: WebSocket, command: Preload | Drain | Reload): void {
    const agent = this.#options.agent
    try {
      agent.supervisor(command.pool)
    } catch (error) {
      const failure = error instanceof LlorchError ? error : new LlorchError('internal_error', String(error))
      this.#sendNow(ws, { type: 'ack', command_id: command.command_id, ok: false, error: { code: failure.code, message: failure.message } })
      return
    }
    this.#sendNow(ws, { type: 'ack', command_id: command.command_id, ok: true })
    this.#log.info('link.command', { command: command.type, pool: command.pool })
    const run =
      command.type === 'drain'
        ? agent.drain({ pool: command.pool, deadlineMs: command.deadline_ms })
        : command.type === 'reload'
          ? agent.reload(command.pool)
          : agent.preload(command.pool)
    run.catch((error: unknown) =>
      this.#log.warn('link.command_failed', { command: command.type, pool: command.pool, err: error instanceof Error ? error.message : String(error) }),
    )
  }

  async #onDispatch(dispatch: Dispatch): Promise<void> {
    const taskId = dispatch.task_id
    let events: AsyncIterable<TaskEvent>
    try {
      const call: EngineCall = dispatch
      events = this.#options.agent.runTask({ ...call, taskId, pool: dispatch.pool, signal: AbortSignal.timeout(dispatch.deadline_ms) })
    } catch (error) {
      const failure = error instanceof LlorchError ? error : new LlorchError('internal_error', String(error))
      // Not ready or no free slot: the control plane may place the task elsewhere.
      this.#send({ type: 'task_event', task_id: taskId, event: { kind: 'error', code: failure.code, message: failure.message, retriable: true } })
      return
    }
    try {
      // The next batch is pulled once this one has left for the socket: chunks merge only while a frame is on its way.
      for await (const event of events) {
        if (this.#stoppedByControlPlane.has(taskId)) break
        await this.#sendAwaitingWrite({ type: 'task_event', task_id: taskId, event })
      }
    } finally {
      this.#stoppedByControlPlane.delete(taskId)
    }
  }

  #onCancel(cancel: Cancel): void {
    if (!this.#options.agent.cancel(cancel.task_id, cancel.deadline)) return
    this.#stoppedByControlPlane.add(cancel.task_id)
    this.#log.info('link.task_cancelled', { task: cancel.task_id, reason: cancel.reason ?? null, deadline: cancel.deadline ?? null })
  }

  #startHeartbeat(ws: WebSocket, intervalMs: number): void {
    this.#stopHeartbeat()
    this.#heartbeat = setInterval(() => {
      if (ws !== this.#ws || ws.readyState !== WebSocket.OPEN) return
      this.#sendNow(ws, { type: 'heartbeat', replicas: this.#options.agent.replicas(), gpus: this.#gpus, running_tasks: this.#options.agent.runningTasks() })
      void this.#options.readGpus().then(
        (gpus) => (this.#gpus = gpus),
        () => {},
      )
    }, intervalMs)
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    this.#heartbeat = null
  }

  /** Sends when welcomed; otherwise keeps the frame (bounded) for the next connection. */
  #send(frame: AgentFrame): void {
    void this.#sendAwaitingWrite(frame)
  }

  /**
   * `#send`, resolving once the frame was handed to the socket (or kept for the next connection):
   * a relay awaiting it slows to what the link carries, and the engine stream with it.
   */
  #sendAwaitingWrite(frame: AgentFrame): Promise<void> {
    const ws = this.#ws
    if (ws && this.#state === 'welcomed' && ws.readyState === WebSocket.OPEN) return new Promise((resolve) => this.#sendNow(ws, frame, resolve))
    this.#keep(frame)
    return Promise.resolve()
  }

  #keep(frame: AgentFrame): void {
    if (frame.type !== 'task_event') return
    this.#buffered.push(frame)
    if (this.#buffered.length > MAX_BUFFERED_FRAMES) {
      this.#buffered.shift()
      if (this.#droppedWhileDown++ === 0) this.#log.warn('link.buffer_full', { max_frames: MAX_BUFFERED_FRAMES })
    }
  }

  #flushBuffered(ws: WebSocket): void {
    const frames = this.#buffered.splice(0)
    this.#droppedWhileDown = 0
    for (const frame of frames) this.#sendNow(ws, frame)
  }

  #sendNow(ws: WebSocket, frame: AgentFrame, onSent?: () => void): void {
    const payload = JSON.stringify(frame)
    ws.send(payload, (error) => {
      if (error) this.#log.warn('link.send_failed', { type: frame.type, err: error.message })
      onSent?.()
    })
    this.#options.metrics?.frameSent(frame.type, Buffer.byteLength(payload))
  }
}
