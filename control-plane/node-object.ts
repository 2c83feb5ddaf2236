import { DurableObject } from 'cloudflare:workers'
import { CLOSE_CODES, PROTOCOL_VERSION, parseAgentFrame } from '../protocol/index.ts'
import type { CommandError, ControlFrame, Dispatch, ErrorCode, Heartbeat, Hello, PoolCommand, ReplicaReport, ReplicaStateChange, TaskEvent, TaskEventFrame } from '../protocol/index.ts'
import type { Bindings } from './env.ts'
import { readWorkerSettings, registryFor } from './env.ts'
import { logError, logEvent } from './log.ts'
import { changedReplicas } from './node/replica-changes.ts'
import { NodeStorage } from './node/node-storage.ts'
import { TaskStreams } from './node/task-streams.ts'
import { markNodeOffline, markNodeOnline, touchNode } from './registry/nodes.ts'
import { ensurePool } from './registry/pools.ts'
import { upsertReplica } from './registry/replicas.ts'
import type { Grant, TaskOutcome } from './task-grant.ts'

/** The Worker names the authenticated node to its object with this header. */
export const NODE_ID_HEADER = 'X-Llorch-Node-Id'
export const MISSED_HEARTBEATS_BEFORE_OFFLINE = 3
export const LAST_SEEN_WRITE_INTERVAL_MS = 60_000
export const COMMAND_ACK_TIMEOUT_MS = 15_000

/** Per-socket state kept in the WebSocket attachment, so it survives hibernation. */
interface Attachment {
  nodeId: string
  connectionId: string
  connectedAt: number
  helloed: boolean
}

function isAttachment(value: unknown): value is Attachment {
  return typeof value === 'object' && value !== null && 'connectionId' in value && 'nodeId' in value
}

export interface CommandResult {
  ok: boolean
  error: CommandError | null
}

/**
 * Live state of one node: holds its agent's WebSocket (hibernation API), sends it commands and
 * dispatches, records presence in the registry and streams each task's events to the Worker
 * request that asked for it.
 */
export class NodeObject extends DurableObject<Bindings> {
  readonly #store: NodeStorage
  readonly #tasks: TaskStreams
  readonly #pendingAcks = new Map<string, (result: CommandResult) => void>()
  /** Cache of the stored current connection id, read on every frame; rebuilt after eviction. */
  #connectionId: string | undefined

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new NodeStorage(ctx.storage.sql)
    this.#tasks = new TaskStreams((taskId, pool) => this.#onReaderGone(taskId, pool))
  }

  /** Accepts an agent's WebSocket. Only the Worker calls this, after checking the node token. */
  override async fetch(request: Request): Promise<Response> {
    const nodeId = request.headers.get(NODE_ID_HEADER)
    if (!nodeId || request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('expected a WebSocket upgrade from the Worker', { status: 426 })
    }
    if (this.#store.get('revoked')) return new Response('node token revoked', { status: 403 })

    for (const old of this.ctx.getWebSockets()) old.close(CLOSE_CODES.replaced, 'replaced by a newer connection from this node')
    const [client, server] = Object.values(new WebSocketPair())
    if (!client || !server) throw new Error('WebSocketPair did not yield two sockets')
    const attachment: Attachment = { nodeId, connectionId: crypto.randomUUID(), connectedAt: Date.now(), helloed: false }
    this.ctx.acceptWebSocket(server)
    server.serializeAttachment(attachment)
    this.#store.set('node_id', nodeId)
    this.#store.set('connection_id', attachment.connectionId)
    this.#connectionId = attachment.connectionId
    logEvent('node.connected', { node: nodeId, connection: attachment.connectionId })
    return new Response(null, { status: 101, webSocket: client })
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const attachment = this.#currentAttachment(ws)
    if (!attachment) return
    const parsed = parseAgentFrame(raw)
    if (!parsed.ok) {
      logEvent('node.invalid_frame', { node: attachment.nodeId, error: parsed.error.message })
      return this.#send(ws, parsed.error)
    }
    const frame = parsed.frame
    if (!attachment.helloed && frame.type !== 'hello') {
      return this.#sendError(ws, 'invalid_request', `send "hello" before "${frame.type}"`)
    }
    switch (frame.type) {
      case 'hello':
        return this.#onHello(ws, attachment, frame)
      case 'heartbeat':
        return this.#onHeartbeat(attachment.nodeId, frame)
      case 'replica_state':
        return this.#onReplicaState(attachment.nodeId, frame)
      case 'task_event':
        return this.#onTaskEvent(ws, frame)
      case 'ack':
        this.#pendingAcks.get(frame.command_id)?.({ ok: frame.ok, error: frame.error ?? null })
        return
      case 'error':
        logEvent('node.agent_error', { node: attachment.nodeId, code: frame.code, message: frame.message })
        return
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const attachment = this.#currentAttachment(ws)
    if (attachment) await this.#goOffline(attachment.nodeId, `socket closed (${code}${reason ? `: ${reason}` : ''})`)
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    const attachment = this.#currentAttachment(ws)
    if (attachment) await this.#goOffline(attachment.nodeId, `socket error: ${String(error)}`)
  }

  /** Three missed heartbeats mark the node offline. */
  override async alarm(): Promise<void> {
    const nodeId = this.#store.get('node_id')
    if (!nodeId || this.#store.get('online') !== '1') return
    const silentFor = Date.now() - (this.#store.getNumber('last_heartbeat_at') ?? 0)
    if (silentFor < this.#offlineAfterMs()) return this.#armOfflineAlarm()
    for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.helloTimeout, 'no heartbeat for 3 intervals')
    await this.#goOffline(nodeId, `no heartbeat for ${silentFor} ms`)
  }

  /** Sends preload, drain or reload for a pool to the agent and waits for its ack. */
  async command(nodeId: string, { command, pool, deadlineMs }: { command: PoolCommand; pool: string; deadlineMs?: number }): Promise<CommandResult> {
    const ws = this.#helloedSocket()
    if (!ws) return { ok: false, error: { code: 'node_lost', message: `node ${nodeId} has no agent connected` } }
    const commandId = crypto.randomUUID()
    const frame: ControlFrame =
      command === 'drain'
        ? { type: 'drain', command_id: commandId, pool, deadline_ms: deadlineMs ?? 30_000 }
        : { type: command, command_id: commandId, pool }
    const acked = new Promise<CommandResult>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: { code: 'node_lost', message: `no ack from node ${nodeId} within ${COMMAND_ACK_TIMEOUT_MS} ms` } }), COMMAND_ACK_TIMEOUT_MS)
      this.#pendingAcks.set(commandId, (result) => {
        clearTimeout(timer)
        resolve(result)
      })
    })
    this.#send(ws, frame)
    logEvent('node.command', { node: nodeId, command, pool, commandId })
    const result = await acked
    this.#pendingAcks.delete(commandId)
    return result
  }

  /** The node's token was revoked: drop the agent and refuse it from now on. */
  async revoke(nodeId: string): Promise<void> {
    this.#store.set('node_id', nodeId)
    this.#store.set('revoked', 1)
    for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.revoked, 'node token revoked')
    await this.#goOffline(nodeId, 'revoked')
  }

  /**
   * Dispatches a granted task to the agent and returns its events as newline-delimited JSON.
   * Without a connected agent the stream carries one retriable `node_lost` error.
   */
  async run(grant: Grant, dispatch: Dispatch): Promise<ReadableStream<Uint8Array>> {
    const stream = this.#tasks.open(grant.taskId, grant.poolId, Date.now())
    const ws = this.#helloedSocket()
    if (!ws) {
      this.#finishTask(grant.taskId, grant.poolId, { kind: 'error', code: 'node_lost', message: `node ${grant.nodeId} is not connected`, retriable: true })
      return stream
    }
    this.#send(ws, dispatch)
    return stream
  }

  /** The client went away: stop the task on the agent and give its slot back. */
  async cancel(taskId: string): Promise<void> {
    const task = this.#tasks.get(taskId)
    if (task) this.#finishTask(taskId, task.pool, { kind: 'error', code: 'cancelled', message: 'cancelled by the client', retriable: false })
  }

  async #onHello(ws: WebSocket, attachment: Attachment, hello: Hello): Promise<void> {
    const { nodeId } = attachment
    if (hello.protocol !== PROTOCOL_VERSION) {
      const message = `agent speaks protocol ${hello.protocol}; this control plane speaks ${PROTOCOL_VERSION}. Upgrade the older side.`
      logEvent('node.protocol_mismatch', { node: nodeId, agentProtocol: hello.protocol })
      this.#sendError(ws, 'protocol_mismatch', message)
      ws.close(CLOSE_CODES.protocolMismatch, `protocol ${hello.protocol} unsupported; control plane speaks ${PROTOCOL_VERSION}`)
      return
    }
    const db = registryFor(this.env)
    const now = new Date()
    await markNodeOnline(db, { id: nodeId, hostname: hello.hostname, agentVersion: hello.agent_version, gpus: hello.gpus, now })
    const accepted: ReplicaReport[] = []
    for (const report of hello.replicas) {
      const pool = await ensurePool(db, { id: report.pool, engine: report.engine })
      if (pool.engine !== report.engine) {
        this.#sendError(ws, 'conflict', `pool "${report.pool}" is served by ${pool.engine} engines; this node offers ${report.engine}. Rename the pool in the agent config or use the same engine kind.`)
        continue
      }
      accepted.push(report)
      await upsertReplica(db, { nodeId, report, now })
    }
    const dropped = this.#store.replicas().filter((stored) => !accepted.some((r) => r.pool === stored.pool))
    this.#store.clearReplicas()
    for (const report of accepted) this.#store.putReplica(report)

    attachment.helloed = true
    ws.serializeAttachment(attachment)
    this.#store.set('online', 1)
    this.#store.set('last_heartbeat_at', now.getTime())
    this.#store.set('last_seen_written_at', now.getTime())

    // Tasks this object streams that the agent no longer runs cannot finish; tasks the agent runs
    // that nobody streams have no reader.
    const agentTasks = new Set(hello.running_tasks)
    for (const taskId of this.#tasks.ids()) {
      const task = this.#tasks.get(taskId)
      if (task && !agentTasks.has(taskId)) this.#finishTask(taskId, task.pool, { kind: 'error', code: 'node_lost', message: 'the agent restarted and lost the task', retriable: true })
    }
    for (const taskId of hello.running_tasks) if (!this.#tasks.has(taskId)) this.#send(ws, { type: 'cancel', task_id: taskId, reason: 'unknown task' })

    const { HEARTBEAT_INTERVAL_MS } = readWorkerSettings(this.env)
    this.#send(ws, { type: 'welcome', protocol: PROTOCOL_VERSION, node_id: nodeId, heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS })
    logEvent('node.online', { node: nodeId, hostname: hello.hostname, agentVersion: hello.agent_version, replicas: accepted.length })
    await Promise.all([
      ...accepted.map((report) => this.#syncPool(nodeId, report)),
      ...dropped.map((report) => this.#pool(report.pool).replicaLost(report.pool, nodeId)),
    ])
    await this.#armOfflineAlarm()
  }

  async #onHeartbeat(nodeId: string, heartbeat: Heartbeat): Promise<void> {
    const now = Date.now()
    this.#store.set('last_heartbeat_at', now)
    const stored = this.#store.replicas()
    const known = heartbeat.replicas.filter((r) => stored.some((s) => s.pool === r.pool))
    const changed = changedReplicas(stored, known)
    for (const report of known) this.#store.putReplica(report)
    const db = registryFor(this.env)
    await Promise.all(changed.map((report) => upsertReplica(db, { nodeId, report, now: new Date(now) })))
    if (now - (this.#store.getNumber('last_seen_written_at') ?? 0) >= LAST_SEEN_WRITE_INTERVAL_MS) {
      this.#store.set('last_seen_written_at', now)
      await touchNode(db, { id: nodeId, gpus: heartbeat.gpus, now: new Date(now) })
    }
    const ws = this.#helloedSocket()
    for (const taskId of heartbeat.running_tasks) if (ws && !this.#tasks.has(taskId)) this.#send(ws, { type: 'cancel', task_id: taskId, reason: 'unknown task' })
    await Promise.all(known.map((report) => this.#syncPool(nodeId, report)))
    await this.#armOfflineAlarm()
  }

  async #onReplicaState(nodeId: string, change: ReplicaStateChange): Promise<void> {
    const report = change.replica
    if (!this.#store.replicas().some((r) => r.pool === report.pool)) return
    this.#store.putReplica(report)
    logEvent('node.replica_state', { node: nodeId, pool: report.pool, state: report.state, previous: change.previous, reason: report.reason })
    await upsertReplica(registryFor(this.env), { nodeId, report, now: new Date() })
    await this.#syncPool(nodeId, report)
  }

  #onTaskEvent(ws: WebSocket, frame: TaskEventFrame): void {
    const task = this.#tasks.get(frame.task_id)
    if (!task) {
      this.#send(ws, { type: 'cancel', task_id: frame.task_id, reason: 'unknown task' })
      return
    }
    if (frame.event.kind === 'end' || frame.event.kind === 'error') {
      this.#finishTask(frame.task_id, task.pool, frame.event, false)
      return
    }
    this.#tasks.deliver(frame.task_id, frame.event)
    if (frame.event.kind === 'started') this.ctx.waitUntil(this.#pool(task.pool).markRunning(frame.task_id))
  }

  /**
   * Ends a task's stream with `last`, gives its slot back and, unless the agent itself ended it,
   * tells the agent to stop.
   */
  #finishTask(taskId: string, pool: string, last: TaskEvent, tellAgent = true): void {
    const task = this.#tasks.get(taskId)
    this.#tasks.deliver(taskId, last)
    if (tellAgent && last.kind === 'error' && last.code !== 'node_lost') {
      const ws = this.#helloedSocket()
      if (ws) this.#send(ws, { type: 'cancel', task_id: taskId, reason: last.code })
    }
    this.ctx.waitUntil(this.#pool(pool).release(taskId, outcomeOf(last, task?.tokensSent ?? false)))
  }

  #onReaderGone(taskId: string, pool: string): void {
    const ws = this.#helloedSocket()
    if (ws) this.#send(ws, { type: 'cancel', task_id: taskId, reason: 'client disconnected' })
    this.ctx.waitUntil(this.#pool(pool).release(taskId, 'cancelled'))
  }

  async #goOffline(nodeId: string, reason: string): Promise<void> {
    const failed = this.#tasks.failAll({ kind: 'error', code: 'node_lost', message: `node ${nodeId} went away: ${reason}`, retriable: true })
    for (const task of failed) this.ctx.waitUntil(this.#pool(task.pool).release(task.taskId, task.started ? 'failed' : 'failed_before_start'))
    if (this.#store.get('online') !== '1') return
    this.#store.set('online', 0)
    logEvent('node.offline', { node: nodeId, reason })
    try {
      await markNodeOffline(registryFor(this.env), { id: nodeId, now: new Date() })
    } catch (error) {
      logError('node.offline_write_failed', { node: nodeId, error: String(error) })
    }
    await Promise.all(this.#store.replicas().map((r) => this.#pool(r.pool).replicaLost(r.pool, nodeId)))
  }

  async #syncPool(nodeId: string, report: ReplicaReport): Promise<void> {
    const live = this.#tasks.ids().filter((id) => this.#tasks.get(id)?.pool === report.pool)
    await this.#pool(report.pool).syncReplica(report.pool, nodeId, report, live)
  }

  #pool(poolId: string) {
    return this.env.POOLS.get(this.env.POOLS.idFromName(poolId))
  }

  #offlineAfterMs(): number {
    return readWorkerSettings(this.env).HEARTBEAT_INTERVAL_MS * MISSED_HEARTBEATS_BEFORE_OFFLINE
  }

  async #armOfflineAlarm(): Promise<void> {
    const last = this.#store.getNumber('last_heartbeat_at') ?? Date.now()
    await this.ctx.storage.setAlarm(last + this.#offlineAfterMs())
  }

  /** The attachment of `ws` if it is the node's current connection; older sockets are closed. */
  #currentAttachment(ws: WebSocket): Attachment | null {
    const attachment: unknown = ws.deserializeAttachment()
    if (!isAttachment(attachment)) return null
    if (attachment.connectionId !== this.#currentConnectionId()) return null
    return attachment
  }

  #currentConnectionId(): string | undefined {
    this.#connectionId ??= this.#store.get('connection_id')
    return this.#connectionId
  }

  #helloedSocket(): WebSocket | null {
    const current = this.#currentConnectionId()
    for (const ws of this.ctx.getWebSockets()) {
      const attachment: unknown = ws.deserializeAttachment()
      if (isAttachment(attachment) && attachment.connectionId === current && attachment.helloed) return ws
    }
    return null
  }

  #send(ws: WebSocket, frame: ControlFrame): void {
    try {
      ws.send(JSON.stringify(frame))
    } catch (error) {
      logError('node.send_failed', { node: this.#store.get('node_id'), type: frame.type, error: String(error) })
    }
  }

  #sendError(ws: WebSocket, code: ErrorCode, message: string): void {
    this.#send(ws, { type: 'error', code, message })
  }
}

function outcomeOf(last: TaskEvent, tokensSent: boolean): TaskOutcome {
  if (last.kind === 'end') return 'completed'
  if (last.kind === 'error' && last.code === 'cancelled') return 'cancelled'
  return tokensSent ? 'failed' : 'failed_before_start'
}
