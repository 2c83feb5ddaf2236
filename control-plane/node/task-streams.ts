import type { TaskEvent } from '../../protocol/index.ts'
import { encodeTaskEvent } from '../task/event-stream.ts'

/** A reader that falls this far behind is cancelled rather than buffered without bound. */
export const MAX_UNREAD_TASK_EVENTS = 4096
/**
 * A dispatch this old that the agent's heartbeat does not list was lost on the way or swallowed:
 * a heartbeat sent after the dispatch arrived lists it, so this only covers the two frames crossing.
 */
export const UNLISTED_DISPATCH_GRACE_MS = 2_000
/**
 * A task the PoolObject dispatched and its Worker reads arrive here in either order; the second
 * must come this soon after the first. A reader left without a dispatch gets `node_lost` (and
 * places the task again); a dispatched task nobody came to read is cancelled on the agent.
 */
export const PAIRING_WITHIN_MS = 5_000

interface OpenStream {
  pool: string
  writer: WritableStreamDefaultWriter<Uint8Array>
  /** The events' side, until its reader takes it. */
  readable: ReadableStream<Uint8Array> | null
  dispatched: boolean
  finished: boolean
  /** When the task was dispatched (or the stream opened, before that). */
  openedAt: number
  pairing: ReturnType<typeof setTimeout> | null
}

export type DeliveryResult = 'delivered' | 'finished' | 'unknown'

/**
 * The event streams of tasks dispatched to one node, each feeding one Worker request. In memory
 * only: an open stream keeps its Durable Object alive.
 */
export class TaskStreams {
  readonly #streams = new Map<string, OpenStream>()
  /** Streams that ended before their reader came for them: kept for it until the pairing deadline. */
  readonly #unclaimed = new Map<string, OpenStream>()
  /** Tasks preempted before their dispatch or their reader came here: the dispatch is dropped and the reader told, until the pairing deadline. */
  readonly #preempted = new Map<string, TaskEvent>()
  readonly #onReaderGone: (taskId: string) => void

  /** `onReaderGone` runs when the Worker side stops reading (client disconnect, too slow, never came) before the end. */
  constructor(onReaderGone: (taskId: string) => void) {
    this.#onReaderGone = onReaderGone
  }

  /** The Worker dispatches the task and reads it at once: the stream to answer it with. */
  open(taskId: string, pool: string): ReadableStream<Uint8Array> {
    this.#entry(taskId, pool).dispatched = true
    return this.claim(taskId, pool)
  }

  /** The PoolObject dispatched the task; its Worker comes for the events with `claim`. False when it was preempted: not sent on. */
  dispatched(taskId: string, pool: string): boolean {
    if (this.#preempted.has(taskId)) return false
    const stream = this.#entry(taskId, pool)
    stream.dispatched = true
    stream.openedAt = Date.now()
    if (stream.readable === null) this.#paired(stream)
    else this.#awaitPairing(taskId, stream)
    return true
  }

  /** The Worker comes for the events of a task, before or after its dispatch arrived. */
  claim(taskId: string, pool: string): ReadableStream<Uint8Array> {
    const preempted = this.#preempted.get(taskId)
    if (preempted) return endedStream(preempted)
    const unclaimed = this.#unclaimed.get(taskId)
    if (unclaimed) {
      this.#unclaimed.delete(taskId)
      this.#paired(unclaimed)
      return this.#take(unclaimed)
    }
    const stream = this.#entry(taskId, pool)
    if (stream.dispatched) this.#paired(stream)
    else this.#awaitPairing(taskId, stream)
    return this.#take(stream)
  }

  /** Whether the task streams here, or was preempted before it did. */
  has(taskId: string): boolean {
    return this.#streams.has(taskId) || this.#preempted.has(taskId)
  }

  /**
   * The pool gave the task's slot to another: its stream ends with `event`, and a dispatch or
   * reader that has not come yet gets it instead. True when the agent was sent the task and
   * must be told to stop it.
   */
  preempt(taskId: string, event: TaskEvent): boolean {
    if (this.#unclaimed.has(taskId)) return false
    const stream = this.#streams.get(taskId)
    if (stream) this.#finish(taskId, stream, event)
    if (stream?.dispatched) return true
    this.#preempted.set(taskId, event)
    setTimeout(() => this.#preempted.delete(taskId), PAIRING_WITHIN_MS)
    return false
  }

  ids(): string[] {
    return [...this.#streams.keys()]
  }

  idsOfPool(pool: string): string[] {
    return [...this.#streams].filter(([, stream]) => stream.pool === pool).map(([taskId]) => taskId)
  }

  /**
   * Tasks streamed here that the agent does not run although it had time to get them (see
   * `UNLISTED_DISPATCH_GRACE_MS`): events reach this object in the order the agent sent them,
   * before a heartbeat sent later, so an open stream the heartbeat leaves out will never end.
   */
  unlisted(running: readonly string[], now: number): string[] {
    const listed = new Set(running)
    return [...this.#streams]
      .filter(([taskId, stream]) => stream.dispatched && !listed.has(taskId) && now - stream.openedAt >= UNLISTED_DISPATCH_GRACE_MS)
      .map(([taskId]) => taskId)
  }

  /** Forwards one event; `end` and `error` close the stream and report `finished`. */
  deliver(taskId: string, event: TaskEvent): DeliveryResult {
    const stream = this.#streams.get(taskId)
    if (!stream) return 'unknown'
    // Writes are not awaited (the agent cannot be paused per task), so the unread backlog shows
    // as a negative desiredSize.
    if ((stream.writer.desiredSize ?? 0) < -MAX_UNREAD_TASK_EVENTS && event.kind === 'deltas') {
      this.#finish(taskId, stream, {
        kind: 'error',
        code: 'cancelled',
        message: `client read too slowly: more than ${MAX_UNREAD_TASK_EVENTS} events unread`,
        retriable: false,
      })
      this.#onReaderGone(taskId)
      return 'finished'
    }
    if (event.kind === 'end' || event.kind === 'error') {
      this.#finish(taskId, stream, event)
      return 'finished'
    }
    void stream.writer.write(encodeTaskEvent(event)).catch(() => {})
    return 'delivered'
  }

  /** Ends every open stream with `event` (the agent went away). */
  failAll(event: TaskEvent): void {
    for (const [taskId, stream] of [...this.#streams]) this.#finish(taskId, stream, event)
  }

  #entry(taskId: string, pool: string): OpenStream {
    const known = this.#streams.get(taskId)
    if (known) return known
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    const writer = writable.getWriter()
    const stream: OpenStream = { pool, writer, readable, dispatched: false, finished: false, openedAt: Date.now(), pairing: null }
    this.#streams.set(taskId, stream)
    writer.closed.catch(() => {
      if (stream.finished) return
      this.#finish(taskId, stream)
      this.#onReaderGone(taskId)
    })
    return stream
  }

  #take(stream: OpenStream): ReadableStream<Uint8Array> {
    const { readable } = stream
    stream.readable = null
    // Taken twice (a Worker asking again): the second reader sees the task's node as lost and places it again.
    return readable ?? lostStream('the task was already being read')
  }

  #awaitPairing(taskId: string, stream: OpenStream): void {
    stream.pairing ??= setTimeout(() => {
      stream.pairing = null
      if (!stream.dispatched) {
        this.#finish(taskId, stream, {
          kind: 'error',
          code: 'node_lost',
          message: `the task's dispatch did not reach its node within ${PAIRING_WITHIN_MS} ms`,
          retriable: true,
        })
        return
      }
      if (stream.readable === null) return
      this.#unclaimed.delete(taskId)
      if (!stream.finished) this.#finish(taskId, stream)
      this.#onReaderGone(taskId)
    }, PAIRING_WITHIN_MS)
  }

  #paired(stream: OpenStream): void {
    if (stream.pairing) clearTimeout(stream.pairing)
    stream.pairing = null
  }

  #finish(taskId: string, stream: OpenStream, last?: TaskEvent): void {
    stream.finished = true
    this.#streams.delete(taskId)
    // Ended before its reader came: kept for it until the pairing deadline, which the timer still guards.
    if (stream.readable !== null && stream.dispatched) this.#unclaimed.set(taskId, stream)
    else this.#paired(stream)
    if (last) void stream.writer.write(encodeTaskEvent(last)).catch(() => {})
    void stream.writer.close().catch(() => {})
  }
}

function lostStream(message: string): ReadableStream<Uint8Array> {
  return endedStream({ kind: 'error', code: 'node_lost', message, retriable: true })
}

function endedStream(event: TaskEvent): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(encodeTaskEvent(event))
      controller.close()
    },
  })
}
