import type { TaskEvent } from '../../protocol/index.ts'
import { encodeTaskEvent } from '../task/event-stream.ts'

/** A reader that falls this far behind is cancelled rather than buffered without bound. */
export const MAX_UNREAD_TASK_EVENTS = 4096
/**
 * A dispatch this old that the agent's heartbeat does not list was lost on the way or swallowed:
 * a heartbeat sent after the dispatch arrived lists it, so this only covers the two frames crossing.
 */
export const UNLISTED_DISPATCH_GRACE_MS = 2_000

interface OpenStream {
  pool: string
  writer: WritableStreamDefaultWriter<Uint8Array>
  finished: boolean
  /** When the task was dispatched. */
  openedAt: number
}

export type DeliveryResult = 'delivered' | 'finished' | 'unknown'

/**
 * The open event streams of tasks dispatched to one node, each feeding one Worker request.
 * In memory only: an open stream keeps its Durable Object alive.
 */
export class TaskStreams {
  readonly #streams = new Map<string, OpenStream>()
  readonly #onReaderGone: (taskId: string) => void

  /** `onReaderGone` runs when the Worker side stops reading (client disconnect, too slow) before the end. */
  constructor(onReaderGone: (taskId: string) => void) {
    this.#onReaderGone = onReaderGone
  }

  open(taskId: string, pool: string): ReadableStream<Uint8Array> {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    const writer = writable.getWriter()
    const stream: OpenStream = { pool, writer, finished: false, openedAt: Date.now() }
    this.#streams.set(taskId, stream)
    writer.closed.catch(() => {
      if (stream.finished) return
      this.#finish(taskId, stream)
      this.#onReaderGone(taskId)
    })
    return readable
  }

  has(taskId: string): boolean {
    return this.#streams.has(taskId)
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
    return [...this.#streams].filter(([taskId, stream]) => !listed.has(taskId) && now - stream.openedAt >= UNLISTED_DISPATCH_GRACE_MS).map(([taskId]) => taskId)
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

  #finish(taskId: string, stream: OpenStream, last?: TaskEvent): void {
    stream.finished = true
    this.#streams.delete(taskId)
    if (last) void stream.writer.write(encodeTaskEvent(last)).catch(() => {})
    void stream.writer.close().catch(() => {})
  }
}
