import { logEvent } from '../runtime/log.ts'
import type { PoolStorage } from './pool-storage.ts'
import type { TaskQueue } from './task-queue.ts'

/** After a restart of the object, how long a queued task's Worker has to ask for it again. */
export const REJOIN_GRACE_MS = 2_000

/**
 * Queued tasks from before this pool object instance whose Worker did not ask for them again
 * within `REJOIN_GRACE_MS`: their requests died with the restart, and they are dropped once.
 */
export class Orphans {
  readonly #store: PoolStorage
  readonly #queue: TaskQueue
  readonly #poolId: string
  /** When this instance started. */
  readonly #startedAt: number
  /** Whether the tasks queued before this instance started were looked at (or there were none). */
  #checked = false

  constructor(store: PoolStorage, queue: TaskQueue, { poolId, startedAt }: { poolId: string; startedAt: number }) {
    this.#store = store
    this.#queue = queue
    this.#poolId = poolId
    this.#startedAt = startedAt
  }

  /** Drops the orphans once the grace is over. */
  drop(now: number): void {
    if (now < this.#startedAt + REJOIN_GRACE_MS) return
    for (const task of this.#store.queuedBefore(this.#startedAt)) {
      if (this.#queue.waiters.has(task.task_id)) continue
      logEvent('pool.orphan_dropped', { pool: this.#poolId, task: task.task_id })
      this.#queue.leave(task, { reason: null, answer: null })
    }
    this.#checked = true
  }

  /** When the alarm must look at them: once their Workers had time to come back; null when there is nothing to look at. */
  dueAt(): number | null {
    if (this.#checked) return null
    if (this.#store.queuedBefore(this.#startedAt).length === 0) {
      this.#checked = true
      return null
    }
    return this.#startedAt + REJOIN_GRACE_MS
  }
}
