import { DurableObject } from 'cloudflare:workers'
import { LlorchError, NATIVE_TASK_TRANSITIONS, TASK_EVENTS_KEPT_MS, refusal, transition } from '../protocol/index.ts'
import type { NativeTaskEvent, NativeTaskState, Refusal, TaskView } from '../protocol/index.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import { settleKeyLease } from './limits/key-lease.ts'
import type { Bindings } from './runtime/env.ts'
import { logError, logEvent } from './runtime/log.ts'
import { EventLog } from './native-task/event-log.ts'
import { NativeEventMapper, SSE_KEEPALIVE, encodeSseEvent } from './native-task/native-events.ts'
import { TaskStorage, finalStateOf } from './native-task/stored-task.ts'
import type { StoredTask, TaskFailure } from './native-task/stored-task.ts'
import type { QueueStanding } from './pool/grant.ts'
import type { TaskSpec } from './native-task/task-spec.ts'
import { admissionOf, startTask } from './task/runner.ts'
import type { RunningTask } from './task/runner.ts'
import type { TaskProgress } from './task/task-progress.ts'

/** While a reader is attached and nothing else is sent, a comment line goes out this often (proxies drop silent streams). */
export const SSE_KEEPALIVE_INTERVAL_MS = 15_000
/** While a task runs, its object wakes itself this often, so that the platform keeps it (and its events) in memory. */
const RUNNING_ALARM_INTERVAL_MS = 30_000
/** Event ids are reserved this many at a time (one storage write per block). */
const EVENT_ID_BLOCK = 1_000

export type CreateTaskResult = { ok: true; standing: QueueStanding; attachBy: number; rateLimitHeaders: Record<string, string> } | Refusal
export type AttachResult = { ok: true; stream: ReadableStream<Uint8Array> } | { ok: true; stream: null } | Refusal
export type TaskResult<T> = { ok: true; value: T } | Refusal

const FINAL_STATES: ReadonlySet<NativeTaskState> = new Set(['completed', 'failed', 'cancelled', 'expired'])
const isFinal = (state: NativeTaskState) => FINAL_STATES.has(state)

const notFound = (taskId: string) => refusal('not_found', `no task "${taskId}" for this API key`)

interface Reader {
  controller: ReadableStreamDefaultController<Uint8Array>
  keepalive: ReturnType<typeof setInterval>
}

/**
 * One native task (`/v2/tasks`), named by its task id: its record, its request, the runner that
 * places it once a client reads its events, and the log of its events, so that a reader that
 * drops can resume where it left off. One reader at a time gets the events: a new one (of the
 * same key) takes over and the old one is told `reader_replaced`. The events live in memory; the
 * record survives a restart, and a task that was running when its object restarted ends `node_lost`.
 */
export class TaskObject extends DurableObject<Bindings> {
  readonly #storage: TaskStorage
  #task: StoredTask | null | undefined = undefined
  #log: EventLog | null = null
  readonly #mapper = new NativeEventMapper()
  #running: RunningTask | null = null
  #reader: Reader | null = null

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#storage = new TaskStorage(ctx.storage.kv)
  }

  /** Queues the task in its pool (not yet to be dispatched) and answers where it stands, or why it is refused. */
  create(spec: TaskSpec): Promise<CreateTaskResult> {
    return this.#guard('create', async () => {
      if (this.#read()) return refusal('conflict', `task ${spec.taskId} exists already`)
      const now = Date.now()
      const admission = { ...admissionOf(spec), attachWithinMs: spec.attachWithinMs }
      const queued = await this.env.POOLS.getByName(spec.poolId).enqueue(admission)
      if (!queued.ok) return queued
      const task: StoredTask = {
        taskId: spec.taskId,
        poolId: spec.poolId,
        apiKeyId: spec.apiKeyId,
        model: spec.generation.body.model,
        endpoint: spec.generation.endpoint,
        priority: spec.priority ?? null,
        requestId: spec.requestId,
        keyLimits: spec.keyLimits,
        affinityKey: spec.affinityKey ?? null,
        rateLimitHeaders: queued.rateLimitHeaders ?? null,
        state: 'queued',
        createdAt: now,
        attachBy: now + spec.attachWithinMs,
        attachedAt: null,
        startedAt: null,
        firstTokenAt: null,
        endedAt: null,
        usage: null,
        error: null,
        eventIdsReservedThrough: EVENT_ID_BLOCK,
        bodyParts: this.#storage.writeBody(spec.generation),
      }
      this.#log = new EventLog()
      this.#task = task
      this.#progress({ kind: 'queued', standing: queued.standing }, now)
      this.#save()
      await this.ctx.storage.setAlarm(task.attachBy)
      return { ok: true, standing: queued.standing, attachBy: task.attachBy, rateLimitHeaders: queued.rateLimitHeaders ?? {} }
    })
  }

  /**
   * The task's events from after `lastEventId`, then live ones until it ends. The first reader
   * sets the task going. Null `stream`: the task ended and the reader has every event.
   */
  attach({ apiKeyId, lastEventId }: { apiKeyId: string; lastEventId: number }): Promise<AttachResult> {
    return this.#guard('attach', async () => {
      const task = this.#owned(apiKeyId)
      if (!task) return notFound(this.#taskId)
      if (task.state === 'expired')
        return refusal('task_expired', `task ${task.taskId} expired: nobody read its events by ${new Date(task.attachBy).toISOString()}`)
      const log = this.#eventLog(task)
      if (isFinal(task.state) && lastEventId >= log.lastId) return { ok: true, stream: null }
      const replay = log.after(lastEventId)
      this.#replaceReader()
      if (!replay.ok) {
        const gone: NativeTaskEvent = {
          event: 'error',
          data: {
            code: 'events_gone',
            message: `events after id ${lastEventId} are no longer kept (the oldest kept is ${replay.oldestKeptId}); GET /v2/tasks/${task.taskId} shows the task`,
            retriable: false,
          },
        }
        return { ok: true, stream: new ReadableStream({ start: (controller) => (controller.enqueue(encodeSseEvent(gone)), controller.close()) }) }
      }
      let mine: ReadableStreamDefaultController<Uint8Array> | null = null
      const stream = new ReadableStream<Uint8Array>({
        start: (controller) => {
          for (const { id, event } of replay.events) controller.enqueue(encodeSseEvent(event, id))
          if (isFinal(task.state)) return controller.close()
          mine = controller
          const keepalive = setInterval(() => this.#send(SSE_KEEPALIVE), SSE_KEEPALIVE_INTERVAL_MS)
          this.#reader = { controller, keepalive }
        },
        // The client went away; the task goes on, for a reader that comes back.
        cancel: () => {
          if (mine && this.#reader?.controller === mine) this.#dropReader()
        },
      })
      if (task.attachedAt === null) {
        task.attachedAt = Date.now()
        this.#save()
      }
      if (!this.#running && !isFinal(task.state)) this.#start(task)
      return { ok: true, stream }
    })
  }

  /** Takes the task out of the queue or stops it on its engine; its slot is free when this answers. No token follows. */
  cancel({ apiKeyId }: { apiKeyId: string }): Promise<TaskResult<NativeTaskState>> {
    return this.#guard('cancel', async () => {
      const task = this.#owned(apiKeyId)
      if (!task) return notFound(this.#taskId)
      if (isFinal(task.state)) return { ok: true, value: task.state }
      const running = this.#running
      this.#end({ code: 'cancelled', message: 'the task was cancelled by its client', retriable: false }, Date.now())
      if (running) await running.cancel()
      else await this.#leaveQueue(task)
      logEvent('task.cancelled', { task: task.taskId, pool: task.poolId, request_id: task.requestId })
      return { ok: true, value: task.state }
    })
  }

  /** `GET /v2/tasks/{id}`: state, place in the queue and timings. */
  view({ apiKeyId }: { apiKeyId: string }): Promise<TaskResult<TaskView>> {
    return this.#guard('view', async () => {
      const task = this.#owned(apiKeyId)
      if (!task) return notFound(this.#taskId)
      const standing = task.state === 'queued' ? await this.env.POOLS.getByName(task.poolId).standing(task.taskId) : null
      const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString())
      const since = (at: number | null) => (at === null ? null : Math.max(0, at - task.createdAt))
      return {
        ok: true,
        value: {
          task_id: task.taskId,
          model: task.model,
          endpoint: task.endpoint,
          priority: task.priority,
          state: task.state,
          queue_position: standing?.position ?? null,
          predicted_start_ms: standing?.predictedStartMs ?? null,
          attached: this.#reader !== null,
          created_at: new Date(task.createdAt).toISOString(),
          attach_by: new Date(task.attachBy).toISOString(),
          started_at: iso(task.startedAt),
          first_token_at: iso(task.firstTokenAt),
          ended_at: iso(task.endedAt),
          queue_wait_ms: since(task.startedAt),
          ttft_ms: since(task.firstTokenAt),
          usage: task.usage,
          error: task.error ? { code: task.error.code, message: task.error.message } : null,
          last_event_id: this.#eventLog(task).lastId,
        },
      }
    })
  }

  /** Expires a task nobody attached to, keeps a running one in memory, and forgets a finished one after `TASK_EVENTS_KEPT_MS`. */
  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      const task = this.#read()
      if (!task) return
      const now = Date.now()
      if (task.state === 'queued' && task.attachedAt === null && now >= task.attachBy) {
        this.#end(
          { code: 'task_expired', message: `nobody read the task's events by ${new Date(task.attachBy).toISOString()}`, retriable: false },
          now,
          'expired',
        )
        logEvent('task.expired', { task: task.taskId, pool: task.poolId })
        await this.#leaveQueue(task)
      }
      if (task.endedAt !== null && now >= task.endedAt + TASK_EVENTS_KEPT_MS) {
        this.#task = null
        this.#log = null
        await this.ctx.storage.deleteAll()
        return
      }
      await this.ctx.storage.setAlarm(task.endedAt !== null ? task.endedAt + TASK_EVENTS_KEPT_MS : now + RUNNING_ALARM_INTERVAL_MS)
    })
  }

  get #taskId(): string {
    return this.ctx.id.name ?? ''
  }

  /** The record, if `apiKeyId` created it; a task of another key is as unknown as a missing one. */
  #owned(apiKeyId: string): StoredTask | null {
    const task = this.#read()
    if (!task || task.apiKeyId !== apiKeyId) return null
    return task
  }

  #read(): StoredTask | null {
    if (this.#task === undefined) {
      this.#task = this.#storage.read()
      if (this.#task) this.#recover(this.#task)
    }
    return this.#task
  }

  /**
   * This instance found a record but runs nothing: the object restarted. A task that was on an
   * engine lost its stream with it; one still queued rejoins its pool's queue when read.
   */
  #recover(task: StoredTask): void {
    this.#log = new EventLog(task.eventIdsReservedThrough)
    if (task.state !== 'running') return
    this.#end({ code: 'node_lost', message: 'the control plane restarted while the task ran; submit it again', retriable: true }, Date.now())
  }

  #eventLog(task: StoredTask): EventLog {
    this.#log ??= new EventLog(task.eventIdsReservedThrough)
    return this.#log
  }

  /** Takes a task that never ran out of its pool's queue, and gives back what it counted against its key's limits. */
  async #leaveQueue(task: StoredTask): Promise<void> {
    await this.env.POOLS.getByName(task.poolId).cancelQueued(task.taskId)
    if (task.rateLimitHeaders !== null) await settleKeyLease(this.env, { apiKeyId: task.apiKeyId, taskId: task.taskId, usage: null })
  }

  /** Places the task and relays what the runner yields, until it ends or is cancelled. */
  #start(task: StoredTask): void {
    const running = startTask({
      env: this.env,
      taskId: task.taskId,
      poolId: task.poolId,
      priority: task.priority ?? undefined,
      apiKeyId: task.apiKeyId,
      keyLimits: task.keyLimits,
      ...(task.affinityKey !== null ? { affinityKey: task.affinityKey } : {}),
      enqueued: { rateLimitHeaders: task.rateLimitHeaders ?? undefined },
      generation: this.#storage.readBody(task.bodyParts),
      ...(task.requestId ? { requestId: task.requestId } : {}),
      queueUpdates: true,
      waitUntil: (promise) => this.ctx.waitUntil(promise),
    })
    this.#running = running
    const relay = async () => {
      try {
        for await (const progress of running.events) {
          if (isFinal(task.state)) break
          this.#progress(progress, Date.now())
          if (progress.kind === 'end' || progress.kind === 'error') break
        }
        if (!isFinal(task.state)) this.#end({ code: 'node_lost', message: 'the task stream ended without an end event', retriable: true }, Date.now())
      } catch (error) {
        if (isFinal(task.state)) return
        const refused = error instanceof LlorchError ? error : new LlorchError('internal_error', `internal error (task ${task.taskId})`)
        if (!(error instanceof LlorchError)) logError('task.relay_failed', { task: task.taskId, error: String(error) })
        this.#end({ code: refused.code, message: refused.message, retriable: refused.retriable }, Date.now())
      }
    }
    this.ctx.waitUntil(relay())
    void this.ctx.storage.setAlarm(Date.now() + RUNNING_ALARM_INTERVAL_MS)
  }

  /** One thing the runner yielded: state and timings move, and the events it means are logged and sent. */
  #progress(progress: TaskProgress, now: number): void {
    const task = this.#task
    if (!task) return
    if (progress.kind === 'queued' && task.state === 'running') this.#move(task, 'queued')
    if (progress.kind === 'granted') {
      task.startedAt ??= now
      this.#move(task, 'running')
      this.#save()
    }
    if (progress.kind === 'deltas') task.firstTokenAt ??= now
    const times = { createdAt: task.createdAt, startedAt: task.startedAt, firstTokenAt: task.firstTokenAt }
    for (const event of this.#mapper.map(progress, times, now)) this.#emit(event)
    if (progress.kind === 'end') {
      task.usage = progress.usage
        ? { prompt_tokens: progress.usage.prompt_tokens, completion_tokens: progress.usage.completion_tokens, total_tokens: progress.usage.total_tokens }
        : null
      this.#finish(task, finalStateOf(progress), now)
    }
    if (progress.kind === 'error') {
      task.error = { code: progress.code, message: progress.message, retriable: progress.retriable }
      this.#finish(task, finalStateOf(progress), now)
    }
  }

  /** Ends the task with an error event, unless it has ended already. */
  #end(error: TaskFailure, now: number, state?: 'expired'): void {
    const task = this.#task
    if (!task || isFinal(task.state)) return
    this.#emit({ event: 'error', data: error })
    task.error = error
    this.#finish(task, state ?? (error.code === 'cancelled' ? 'cancelled' : 'failed'), now)
  }

  #finish(task: StoredTask, state: NativeTaskState, now: number): void {
    this.#move(task, state)
    task.endedAt = now
    this.#save()
    this.#dropReader()
    void this.ctx.storage.setAlarm(now + TASK_EVENTS_KEPT_MS)
  }

  #move(task: StoredTask, to: NativeTaskState): void {
    if (task.state === to) return
    task.state = transition<NativeTaskState>(NATIVE_TASK_TRANSITIONS, task.state, to, { machine: 'native task', subject: `task ${task.taskId}` })
  }

  #emit(event: NativeTaskEvent): void {
    const task = this.#task
    if (!task) return
    const { id } = this.#eventLog(task).append(event)
    if (id > task.eventIdsReservedThrough) {
      task.eventIdsReservedThrough = id + EVENT_ID_BLOCK
      this.#storage.write(task)
    }
    this.#send(encodeSseEvent(event, id))
  }

  #send(bytes: Uint8Array): void {
    try {
      this.#reader?.controller.enqueue(bytes)
    } catch {
      this.#dropReader()
    }
  }

  /** A new reader takes over: the one before is told so and closed. */
  #replaceReader(): void {
    if (!this.#reader) return
    this.#send(
      encodeSseEvent({ event: 'error', data: { code: 'reader_replaced', message: 'another reader of this task took over its events', retriable: false } }),
    )
    this.#dropReader()
  }

  #dropReader(): void {
    const reader = this.#reader
    if (!reader) return
    this.#reader = null
    clearInterval(reader.keepalive)
    try {
      reader.controller.close()
    } catch {
      // Already closed by the client going away.
    }
  }

  #save(): void {
    const task = this.#task
    if (!task) return
    this.#storage.write(task)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'TaskObject', name: this.ctx.id.name, method }, work)
  }
}
