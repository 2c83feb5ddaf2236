import { MAX_KEPT_TASK_EVENTS } from '../../protocol/index.ts'
import type { NativeTaskEvent } from '../../protocol/index.ts'

export interface LoggedEvent {
  id: number
  event: NativeTaskEvent
}

export type Replay = { ok: true; events: LoggedEvent[] } | { ok: false; oldestKeptId: number }

/**
 * A task's events with their ids (1, 2, …), the newest `MAX_KEPT_TASK_EVENTS` of them kept so a
 * reader that reconnects can be given what it missed.
 */
export class EventLog {
  readonly #events: LoggedEvent[] = []
  #lastId: number
  readonly #startedAfter: number

  /** `lastId`: no id handed out before this log existed is above it (an object restart lost those events). */
  constructor(lastId = 0) {
    this.#lastId = lastId
    this.#startedAfter = lastId
  }

  get lastId(): number {
    return this.#lastId
  }

  append(event: NativeTaskEvent): LoggedEvent {
    this.#lastId += 1
    const logged = { id: this.#lastId, event }
    this.#events.push(logged)
    if (this.#events.length > MAX_KEPT_TASK_EVENTS) this.#events.shift()
    return logged
  }

  /**
   * Every event after `afterId`, or the oldest id still kept when some of them are gone. A reader
   * that last saw an id from before this log existed gets everything since: what it may have
   * missed went with the restart, and what came after (the task's ending) is what it must see.
   */
  after(afterId: number): Replay {
    if (afterId >= this.#lastId) return { ok: true, events: [] }
    const from = Math.max(afterId, this.#startedAfter)
    const oldestKeptId = this.#events[0]?.id ?? this.#lastId + 1
    if (from + 1 < oldestKeptId) return { ok: false, oldestKeptId }
    return { ok: true, events: this.#events.slice(from + 1 - oldestKeptId) }
  }
}
