import type { PoolStorage } from './pool-storage.ts'
import type { TaskRow } from './task-row.ts'

/** After a restart of the object, how long a queued task's Worker has to ask for it again. */
export const REJOIN_GRACE_MS = 2_000

/**
 * The queued tasks an instance of the PoolObject found at its start. Their Workers get
 * `REJOIN_GRACE_MS` to ask again; the rest died with the restart and are dropped, once.
 */
export class RestartOrphans {
  /** When this instance started: grants and queued rows older than that were made by another. */
  readonly startedAt: number
  readonly #store: PoolStorage
  #checked = false

  constructor(store: PoolStorage, startedAt: number) {
    this.#store = store
    this.startedAt = startedAt
  }

  /** When the alarm must look at them, or null once they were looked at (or there were none). */
  dueAt(): number | null {
    if (!this.#checked && this.#store.queuedBefore(this.startedAt).length > 0) return this.startedAt + REJOIN_GRACE_MS
    this.#checked = true
    return null
  }

  /** Once the grace has passed, the ones whose Worker did not ask again (`isWaited` false); none before. */
  take(now: number, isWaited: (taskId: string) => boolean): TaskRow[] {
    if (now < this.startedAt + REJOIN_GRACE_MS) return []
    this.#checked = true
    return this.#store.queuedBefore(this.startedAt).filter((task) => !isWaited(task.task_id))
  }
}
