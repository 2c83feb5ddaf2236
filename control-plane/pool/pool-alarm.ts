import { countStorageWrite } from '../runtime/cost-counts.ts'
import { alarmNeedsSetting, nextAlarmAt } from './alarm-schedule.ts'

/** The pool object's one alarm, set no more often than needed (see `alarmNeedsSetting`). */
export class PoolAlarm {
  readonly #storage: DurableObjectStorage
  /** When the alarm is set to fire, null when none is; `undefined` until read after a restart. */
  #setAt: number | null | undefined = undefined

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage
  }

  /** The alarm fired: it is gone, and the next one must be set whatever was remembered. */
  fired(): void {
    this.#setAt = null
  }

  /** Makes sure the alarm fires by the earliest of `dueTimes`; an earlier one already set stays. */
  async arm(dueTimes: ReadonlyArray<number | null>): Promise<void> {
    const next = nextAlarmAt(dueTimes)
    if (next === null) return
    // Read only when unknown: null means none is set (the alarm handler says so of the one that fired).
    if (this.#setAt === undefined) this.#setAt = await this.#storage.getAlarm()
    if (!alarmNeedsSetting(this.#setAt, next)) return
    this.#setAt = next
    countStorageWrite()
    await this.#storage.setAlarm(next)
  }
}
