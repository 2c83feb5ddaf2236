import { DurableObject } from 'cloudflare:workers'
import { CLOSE_CODES, PROTOCOL_VERSION, parseAgentFrame } from '../protocol/index.ts'
import type {
  ControlFrame,
  Dispatch,
  ErrorCode,
  Heartbeat,
  Hello,
  MissedDeadline,
  NodeMetrics,
  PoolCommand,
  ReplicaReport,
  ReplicaStateChange,
  TaskEvent,
  TaskEventFrame,
} from '../protocol/index.ts'
import { countStorageWrite } from './runtime/cost-counts.ts'
import { answerClose } from './node/close-handshake.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import type { Bindings } from './runtime/env.ts'
import { registryFor } from './registry/registry-for.ts'
import { readWorkerSettings } from './runtime/env.ts'
import { logError, logEvent } from './runtime/log.ts'
import type { CommandResult } from './pool/command-result.ts'
import { NODE_ID_HEADER } from './node/node-id-header.ts'
import { NodeMetricsRecorder } from './node/node-metrics.ts'
import { asPoolSeesIt, changedReplicas } from './node/replica-changes.ts'
import { NodeStorage } from './node/node-storage.ts'
import { TaskStreams } from './node/task-streams.ts'
import { NodeToken } from './node/node-token.ts'
import type { TokenCheck } from './node/node-token.ts'
import { findNode, markNodeOffline, markNodeOnline, touchNode } from './registry/nodes.ts'
import { ensurePool } from './registry/pools.ts'
import { upsertReplica } from './registry/replicas.ts'
import type { Grant } from './pool/grant.ts'

/** The Worker names the authenticated node to its object with this header. */
export const MISSED_HEARTBEATS_BEFORE_OFFLINE = 3
export const LAST_SEEN_WRITE_INTERVAL_MS = 60_000
export const COMMAND_ACK_TIMEOUT_MS = 15_000
/** Most cancel frames one heartbeat or hello may cause. */
export const MAX_CANCELS_PER_FRAME = 64
/** How long in-flight tasks get to finish when a drain does not say. */
export const DEFAULT_DRAIN_DEADLINE_MS = 30_000

/** Per-socket state kept in the WebSocket attachment, so it survives hibernation. */
interface Attachment {
  connectionId: string
  connectedAt: number
  helloed: boolean
}

function isAttachment(value: unknown): value is Attachment {
  return typeof value === 'object' && value !== null && 'connectionId' in value && 'helloed' in value
}

/**
 * Live state of one node, named by its node id: holds its agent's WebSocket (hibernation API),
 * sends it commands and dispatches, records presence in the registry and streams each task's
 * events to the Worker request that asked for it. It tells PoolObjects what its replicas do;
 * slots are the business of the Worker that holds the grant.
 */
export class NodeObject extends DurableObject<Bindings> {
  #storage: NodeStorage | null = null
  readonly #tasks: TaskStreams
  #metricsRecorder: NodeMetricsRecorder | null = null
  readonly #token: NodeToken
  readonly #pendingAcks = new Map<string, (result: CommandResult) => void>()
  /**
   * The hello and replica_state frames still being handled, in the order they came. Each waits for
   * the one before: a hello awaits registry writes after its welcome, and a state the agent
   * reports meanwhile must not be overwritten by the hello's older one.
   */
  #replicaFrames: Promise<void> = Promise.resolve()
  /** Cache of the stored current connection id, read on every frame; rebuilt after eviction. */
  #connectionId: string | undefined
  /** Cache of each socket's attachment, read on every frame (deserializing it each time showed in profiles); rebuilt after eviction. */
  readonly #attachments = new WeakMap<WebSocket, Attachment>()

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#token = new NodeToken(ctx.storage.kv)
    this.#tasks = new TaskStreams((taskId) => this.#onReaderGone(taskId))
  }

  // Made at first use: checking the token of a node that does not exist creates no tables.
  get #store(): NodeStorage {
    this.#storage ??= new NodeStorage(this.ctx.storage.sql)
    return this.#storage
  }

  get #metrics(): NodeMetricsRecorder {
    this.#metricsRecorder ??= new NodeMetricsRecorder(this.ctx.storage.sql)
    return this.#metricsRecorder
  }

  /** The node was created: it holds its token's hash from now on. */
  setToken(hash: string): Promise<void> {
    return this.#guard('setToken', () => this.#token.set(hash))
  }

  /** Checks an agent's node token without a registry read (but once, for a node created before its object held the hash). */
  verifyToken(token: string): Promise<TokenCheck> {
    return this.#guard('verifyToken', () => this.#token.verify(token, () => findNode(registryFor(this.env), this.#nodeId)))
  }

  get #nodeId(): string {
    return this.ctx.id.name ?? ''
  }

  /** Accepts an agent's WebSocket. Only the Worker calls this, after checking the node token. */
  override fetch(request: Request): Promise<Response> {
    return this.#guard('fetch', () => {
      if (request.headers.get(NODE_ID_HEADER) !== this.#nodeId || request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
        return new Response('expected a WebSocket upgrade from the Worker', { status: 426 })
      }
      if (this.#store.get('revoked')) return new Response('node token revoked', { status: 403 })

      for (const old of this.ctx.getWebSockets()) old.close(CLOSE_CODES.replaced, 'replaced by a newer connection from this node')
      const [client, server] = Object.values(new WebSocketPair())
      if (!client || !server) throw new Error('WebSocketPair did not yield two sockets')
      const attachment: Attachment = { connectionId: crypto.randomUUID(), connectedAt: Date.now(), helloed: false }
      this.ctx.acceptWebSocket(server)
      this.#attach(server, attachment)
      this.#store.set('connection_id', attachment.connectionId)
      // A new connection is a sign of life: the offline alarm armed before a restart of the
      // control plane must not drop it before its hello arrives.
      this.#store.set('last_heartbeat_at', attachment.connectedAt)
      this.#connectionId = attachment.connectionId
      logEvent('node.connected', { node: this.#nodeId, connection: attachment.connectionId })
      this.#metrics.count('connections')
      return new Response(null, { status: 101, webSocket: client })
    })
  }

  /** A frame that fails here is answered with an error frame; the socket and the object stay up. */
  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    try {
      await this.#guard('webSocketMessage', () => this.#onMessage(ws, raw))
    } catch {
      this.#sendError(ws, 'internal_error', 'the control plane failed to handle this frame; it was logged')
    }
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    return this.#guard('webSocketClose', async () => {
      answerClose(ws, code, reason)
      if (this.#currentAttachment(ws)) await this.#goOffline(`socket closed (${code}${reason ? `: ${reason}` : ''})`)
    })
  }

  override webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    return this.#guard('webSocketError', async () => {
      if (this.#currentAttachment(ws)) await this.#goOffline(`socket error: ${String(error)}`)
    })
  }

  /** Missed heartbeats (or a hello that never came) mark the node offline. */
  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      if (this.#store.get('online') !== '1') return
      const silentFor = Date.now() - (this.#store.getNumber('last_heartbeat_at') ?? 0)
      if (silentFor < this.#offlineAfterMs()) return this.#armOfflineAlarm()
      for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.helloTimeout, `no heartbeat for ${MISSED_HEARTBEATS_BEFORE_OFFLINE} intervals`)
      await this.#goOffline(`no heartbeat for ${silentFor} ms`)
    })
  }

  /** Sends preload, drain or reload for a pool to the agent and waits for its ack. */
  command({ command, pool, deadlineMs }: { command: PoolCommand; pool: string; deadlineMs?: number }): Promise<CommandResult> {
    return this.#guard('command', async () => {
      const nodeId = this.#nodeId
      const ws = this.#helloedSocket()
      if (!ws) return { ok: false, error: { code: 'node_lost', message: `node ${nodeId} has no agent connected` } }
      const commandId = crypto.randomUUID()
      const frame: ControlFrame =
        command === 'drain'
          ? { type: 'drain', command_id: commandId, pool, deadline_ms: deadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS }
          : { type: command, command_id: commandId, pool }
      const acked = new Promise<CommandResult>((resolve) => {
        const timer = setTimeout(
          () => resolve({ ok: false, error: { code: 'node_lost', message: `no ack from node ${nodeId} within ${COMMAND_ACK_TIMEOUT_MS} ms` } }),
          COMMAND_ACK_TIMEOUT_MS,
        )
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
    })
  }

  /** The node's token was revoked: drop the agent and refuse it from now on. */
  revoke(): Promise<void> {
    return this.#guard('revoke', async () => {
      this.#store.set('revoked', 1)
      this.#token.revoke()
      // Its pools stop counting on it before its tasks fail, so that none is placed back on it
      // and a queue it was the last replica of ends now.
      await Promise.all(this.#store.replicas().map((r) => this.env.POOLS.getByName(r.pool).replicaLost(this.#nodeId, { revoked: true })))
      for (const ws of this.ctx.getWebSockets()) ws.close(CLOSE_CODES.revoked, 'node token revoked')
      await this.#goOffline('revoked')
    })
  }

  /**
   * Dispatches a granted task to the agent and returns its events as newline-delimited JSON.
   * Without a connected agent the stream carries one retriable `node_lost` error.
   */
  run(grant: Grant, dispatch: Dispatch): Promise<ReadableStream<Uint8Array>> {
    return this.#guard('run', () => {
      // Dispatched already (by the PoolObject, whose answer was lost to a restart) or preempted: read it, never send it twice.
      if (this.#tasks.has(grant.taskId)) return this.#tasks.claim(grant.taskId, grant.poolId)
      const stream = this.#tasks.open(grant.taskId, grant.poolId)
      this.#sendDispatch(grant, dispatch)
      return stream
    })
  }

  /**
   * The PoolObject granted a task here: dispatch it to the agent now; its Worker reads the events
   * with `claim`. With `preempted`, the task took that batch line's slot, which is stopped first.
   */
  dispatch(grant: Grant, dispatch: Dispatch, preempted?: string): Promise<void> {
    return this.#guard('dispatch', () => {
      if (preempted !== undefined) this.#preempt(preempted)
      if (this.#tasks.dispatched(grant.taskId, grant.poolId)) this.#sendDispatch(grant, dispatch)
    })
  }

  /**
   * The events of a task the PoolObject dispatched here, as `run` returns them, whether the
   * dispatch came before this call or comes after it (within `PAIRING_WITHIN_MS`).
   */
  claim(grant: Grant): Promise<ReadableStream<Uint8Array>> {
    return this.#guard('claim', () => this.#tasks.claim(grant.taskId, grant.poolId))
  }

  /** Presence, heartbeat age, GPU memory and counters of this node, for `/metrics`. */
  metrics(): Promise<NodeMetrics> {
    return this.#guard('metrics', () =>
      this.#metrics.snapshot(this.#nodeId, {
        online: this.#store.get('online') === '1',
        lastHeartbeatAt: this.#store.getNumber('last_heartbeat_at'),
        streamingTasks: this.#tasks.ids().length,
        downloads: this.#store
          .replicas()
          .flatMap((r) => (r.download ? [{ pool: r.pool, bytes_done: r.download.bytes_done, bytes_total: r.download.bytes_total }] : [])),
        now: Date.now(),
      }),
    )
  }

  /** The pool gave the task's slot to an interactive task: the agent stops it, and its reader gets a retriable `preempted` error. */
  preempt(taskId: string): Promise<void> {
    return this.#guard('preempt', () => this.#preempt(taskId))
  }

  /** The client went away, or (`missed`) the engine missed a deadline: stop the task on the agent and end its stream. */
  cancel(taskId: string, missed?: MissedDeadline): Promise<void> {
    return this.#guard('cancel', () => {
      if (!this.#tasks.has(taskId)) return
      const reason = missed ? `the engine missed the ${missed === 'first_token' ? 'first-token' : 'idle'} deadline` : 'cancelled by the client'
      this.#tellAgentToStop(taskId, reason, missed)
      this.#tasks.deliver(taskId, { kind: 'error', code: 'cancelled', message: reason, retriable: false })
    })
  }

  async #onMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const attachment = this.#currentAttachment(ws)
    if (!attachment) return
    const parsed = parseAgentFrame(raw)
    if (!parsed.ok) {
      logEvent('node.invalid_frame', { node: this.#nodeId, error: parsed.error.message })
      this.#send(ws, parsed.error)
      return
    }
    const frame = parsed.frame
    if (!attachment.helloed && frame.type !== 'hello') {
      return this.#sendError(ws, 'invalid_request', `send "hello" before "${frame.type}"`)
    }
    switch (frame.type) {
      case 'hello':
        return this.#inOrder(() => this.#onHello(ws, attachment, frame))
      case 'heartbeat':
        return this.#onHeartbeat(frame)
      case 'replica_state':
        return this.#inOrder(() => this.#onReplicaState(frame))
      case 'task_event':
        return this.#onTaskEvent(ws, frame)
      case 'ack':
        this.#pendingAcks.get(frame.command_id)?.({ ok: frame.ok, error: frame.error ?? null })
        return
      case 'error':
        logEvent('node.agent_error', { node: this.#nodeId, code: frame.code, message: frame.message })
        return
    }
  }

  /** Runs `work` once the replica frames before it are handled; a failed one does not stop the next. */
  #inOrder(work: () => Promise<void>): Promise<void> {
    const handled = this.#replicaFrames.then(work)
    this.#replicaFrames = handled.catch(() => {})
    return handled
  }

  async #onHello(ws: WebSocket, attachment: Attachment, hello: Hello): Promise<void> {
    const nodeId = this.#nodeId
    if (hello.protocol !== PROTOCOL_VERSION) {
      const message = `agent speaks protocol ${hello.protocol}; this control plane speaks ${PROTOCOL_VERSION}. Upgrade the older side.`
      logEvent('node.protocol_mismatch', { node: nodeId, agentProtocol: hello.protocol })
      this.#sendError(ws, 'protocol_mismatch', message)
      ws.close(CLOSE_CODES.protocolMismatch, `protocol ${hello.protocol} unsupported; control plane speaks ${PROTOCOL_VERSION}`)
      return
    }
    const now = Date.now()
    // The node is online from here on, whatever the registry says: the offline alarm is armed
    // before any registry write can fail.
    attachment.helloed = true
    this.#attach(ws, attachment)
    this.#store.set('online', 1)
    this.#store.set('last_heartbeat_at', now)
    this.#metrics.gpus(hello.gpus)
    await this.#armOfflineAlarm()
    // Welcomed before any registry write: a reconnect storm (every agent after a deploy) waits on
    // no libSQL round trip; a replica the registry refuses is told in an error frame after.
    const { HEARTBEAT_INTERVAL_MS } = readWorkerSettings(this.env)
    this.#send(ws, { type: 'welcome', protocol: PROTOCOL_VERSION, node_id: nodeId, heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS })

    const accepted = await this.#acceptReplicas(ws, hello)
    const dropped = this.#store.replicas().filter((stored) => !accepted.some((r) => r.pool === stored.pool))
    this.#store.clearReplicas()
    for (const report of accepted) this.#store.putReplica(report)
    await this.#writeRegistry('hello', async (db) => {
      await markNodeOnline(db, { id: nodeId, hostname: hello.hostname, agentVersion: hello.agent_version, gpus: hello.gpus, now: new Date(now) })
      await Promise.all(accepted.map((report) => upsertReplica(db, { nodeId, report, now: new Date(now) })))
    })
    this.#store.set('last_seen_written_at', now)

    // Tasks this object streams that the agent no longer runs cannot finish; tasks the agent runs
    // that nobody streams have no reader.
    const agentTasks = new Set(hello.running_tasks)
    for (const taskId of this.#tasks.ids()) {
      if (!agentTasks.has(taskId))
        this.#tasks.deliver(taskId, { kind: 'error', code: 'node_lost', message: 'the agent restarted and lost the task', retriable: true })
    }
    this.#cancelUnknown(ws, hello.running_tasks)

    logEvent('node.online', { node: nodeId, hostname: hello.hostname, agentVersion: hello.agent_version, replicas: accepted.length })
    await Promise.all([
      ...accepted.map((report) => this.#syncPool(report)),
      ...dropped.map((report) => this.env.POOLS.getByName(report.pool).replicaLost(nodeId)),
    ])
  }

  /**
   * The replicas of a hello whose pool takes this engine kind. Without the registry the kind
   * cannot be checked, and every replica is taken rather than the node refused.
   */
  async #acceptReplicas(ws: WebSocket, hello: Hello): Promise<ReplicaReport[]> {
    const accepted: ReplicaReport[] = []
    const checked = await this.#writeRegistry('hello.pools', async (db) => {
      for (const report of hello.replicas) {
        const pool = await ensurePool(db, { id: report.pool, engine: report.engine })
        if (pool.engine === report.engine) accepted.push(report)
        else
          this.#sendError(
            ws,
            'conflict',
            `pool "${report.pool}" is served by ${pool.engine} engines; this node offers ${report.engine}. Rename the pool in the agent config or use the same engine kind.`,
          )
      }
    })
    return checked ? accepted : hello.replicas
  }

  async #onHeartbeat(heartbeat: Heartbeat): Promise<void> {
    const nodeId = this.#nodeId
    const now = Date.now()
    this.#store.set('last_heartbeat_at', now)
    // Before any await: a dispatch sent meanwhile is not one this heartbeat could list.
    this.#failUnlisted(heartbeat.running_tasks, now)
    this.#metrics.count('heartbeats')
    this.#metrics.gpus(heartbeat.gpus)
    const stored = this.#store.replicas()
    const known = heartbeat.replicas.filter((r) => stored.some((s) => s.pool === r.pool))
    // After a failed registry write every replica is written again, not only the changed ones.
    const stale = this.#store.get('registry_stale') === '1'
    const changed = stale ? known : changedReplicas(stored, known)
    for (const report of known) this.#store.putReplica(report)
    const lastSeenDue = stale || now - (this.#store.getNumber('last_seen_written_at') ?? 0) >= LAST_SEEN_WRITE_INTERVAL_MS
    if (changed.length > 0 || lastSeenDue) {
      await this.#writeRegistry('heartbeat', async (db) => {
        await Promise.all(changed.map((report) => upsertReplica(db, { nodeId, report, now: new Date(now) })))
        if (lastSeenDue) await touchNode(db, { id: nodeId, gpus: heartbeat.gpus, now: new Date(now) })
      })
      if (lastSeenDue) this.#store.set('last_seen_written_at', now)
    }
    const ws = this.#helloedSocket()
    if (ws) this.#cancelUnknown(ws, heartbeat.running_tasks)
    await Promise.all(known.map((report) => this.#syncPool(report)))
    await this.#armOfflineAlarm()
  }

  async #onReplicaState(change: ReplicaStateChange): Promise<void> {
    const report = change.replica
    if (!this.#store.replicas().some((r) => r.pool === report.pool)) return
    this.#store.putReplica(report)
    logEvent('node.replica_state', { node: this.#nodeId, pool: report.pool, state: report.state, previous: change.previous, reason: report.reason })
    await this.#writeRegistry('replica_state', (db) => upsertReplica(db, { nodeId: this.#nodeId, report, now: new Date() }))
    await this.#syncPool(report)
  }

  #onTaskEvent(ws: WebSocket, frame: TaskEventFrame): void {
    if (this.#tasks.deliver(frame.task_id, frame.event) === 'unknown') this.#send(ws, { type: 'cancel', task_id: frame.task_id, reason: 'unknown task' })
  }

  /**
   * Tells the agent to stop tasks it runs that nobody here streams, at most
   * `MAX_CANCELS_PER_FRAME` per frame: an agent listing thousands gets the rest on later heartbeats.
   */
  #cancelUnknown(ws: WebSocket, runningTaskIds: readonly string[]): void {
    let sent = 0
    for (const taskId of runningTaskIds) {
      if (sent >= MAX_CANCELS_PER_FRAME) return
      if (this.#tasks.has(taskId)) continue
      this.#send(ws, { type: 'cancel', task_id: taskId, reason: 'unknown task' })
      sent += 1
    }
  }

  /** Dispatches the agent swallowed end as lost, so their Workers place them again; the agent is told to drop them. */
  #failUnlisted(runningTaskIds: readonly string[], now: number): void {
    for (const taskId of this.#tasks.unlisted(runningTaskIds, now)) {
      logEvent('node.dispatch_unlisted', { node: this.#nodeId, task: taskId })
      this.#tasks.deliver(taskId, { kind: 'error', code: 'node_lost', message: `node ${this.#nodeId} does not run the task it was sent`, retriable: true })
      this.#tellAgentToStop(taskId, 'not listed as running')
    }
  }

  #preempt(taskId: string): void {
    const event: TaskEvent = { kind: 'error', code: 'preempted', message: 'the slot was given to an interactive task', retriable: true }
    if (this.#tasks.preempt(taskId, event)) this.#tellAgentToStop(taskId, 'preempted by an interactive task')
  }

  #onReaderGone(taskId: string): void {
    this.#tellAgentToStop(taskId, 'client disconnected')
  }

  #tellAgentToStop(taskId: string, reason: string, missed?: MissedDeadline): void {
    const ws = this.#helloedSocket()
    if (ws) this.#send(ws, { type: 'cancel', task_id: taskId, reason, ...(missed ? { deadline: missed } : {}) })
  }

  /**
   * The agent is gone. Its replicas are marked lost first, so that the tasks told `node_lost`
   * right after are placed again somewhere else, not back onto this node.
   */
  async #goOffline(reason: string): Promise<void> {
    const nodeId = this.#nodeId
    const wasOnline = this.#store.get('online') === '1'
    this.#store.set('online', 0)
    if (wasOnline) {
      logEvent('node.offline', { node: nodeId, reason })
      await Promise.all(this.#store.replicas().map((r) => this.env.POOLS.getByName(r.pool).replicaLost(nodeId)))
    }
    this.#tasks.failAll({ kind: 'error', code: 'node_lost', message: `node ${nodeId} went away: ${reason}`, retriable: true })
    if (wasOnline) await this.#writeRegistry('offline', (db) => markNodeOffline(db, { id: nodeId, now: new Date() }))
  }

  /** Tells the pool what the replica does, and which of its tasks this object still streams. */
  async #syncPool(report: ReplicaReport): Promise<void> {
    if (this.#store.get('revoked')) return
    await this.env.POOLS.getByName(report.pool).syncReplica(this.#nodeId, asPoolSeesIt(report), this.#tasks.idsOfPool(report.pool))
  }

  /**
   * Registry writes never decide whether the node serves: a failure is logged, remembered, and
   * the next heartbeat writes everything again. True when the write went through.
   */
  async #writeRegistry(what: string, write: (db: ReturnType<typeof registryFor>) => Promise<unknown>): Promise<boolean> {
    try {
      await write(registryFor(this.env))
      if (this.#store.get('registry_stale') === '1') this.#store.set('registry_stale', 0)
      return true
    } catch (error) {
      logError('node.registry_write_failed', { node: this.#nodeId, what, error: String(error) })
      this.#store.set('registry_stale', 1)
      return false
    }
  }

  #offlineAfterMs(): number {
    return readWorkerSettings(this.env).HEARTBEAT_INTERVAL_MS * MISSED_HEARTBEATS_BEFORE_OFFLINE
  }

  async #armOfflineAlarm(): Promise<void> {
    const last = this.#store.getNumber('last_heartbeat_at') ?? Date.now()
    countStorageWrite()
    await this.ctx.storage.setAlarm(last + this.#offlineAfterMs())
  }

  /** The attachment of `ws` if it is the node's current connection; older sockets are ignored. */
  #currentAttachment(ws: WebSocket): Attachment | null {
    const attachment = this.#attachmentOf(ws)
    if (attachment === null || attachment.connectionId !== this.#currentConnectionId()) return null
    return attachment
  }

  #attachmentOf(ws: WebSocket): Attachment | null {
    const cached = this.#attachments.get(ws)
    if (cached) return cached
    const attachment: unknown = ws.deserializeAttachment()
    if (!isAttachment(attachment)) return null
    this.#attachments.set(ws, attachment)
    return attachment
  }

  #attach(ws: WebSocket, attachment: Attachment): void {
    ws.serializeAttachment(attachment)
    this.#attachments.set(ws, attachment)
  }

  #currentConnectionId(): string | undefined {
    this.#connectionId ??= this.#store.get('connection_id')
    return this.#connectionId
  }

  #helloedSocket(): WebSocket | null {
    const current = this.#currentConnectionId()
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = this.#attachmentOf(ws)
      if (attachment !== null && attachment.connectionId === current && attachment.helloed) return ws
    }
    return null
  }

  #sendDispatch(grant: Grant, dispatch: Dispatch): void {
    const ws = this.#helloedSocket()
    if (!ws || !this.#send(ws, dispatch)) {
      this.#tasks.deliver(grant.taskId, { kind: 'error', code: 'node_lost', message: `node ${grant.nodeId} is not connected`, retriable: true })
    }
  }

  /** False when the socket could not take the frame (it is closing). */
  #send(ws: WebSocket, frame: ControlFrame): boolean {
    try {
      ws.send(JSON.stringify(frame))
      return true
    } catch (error) {
      logError('node.send_failed', { node: this.#nodeId, type: frame.type, error: String(error) })
      return false
    }
  }

  #sendError(ws: WebSocket, code: ErrorCode, message: string): void {
    this.#send(ws, { type: 'error', code, message })
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'NodeObject', name: this.ctx.id.name, method }, work)
  }
}
