export interface CrashRecord {
  /** Crashes within the window, this one included. */
  crashes: number
  /** True once `maxCrashes` crashes fell within the window: no more automatic restarts. */
  open: boolean
}

/**
 * Counts crashes in a sliding window and opens after `maxCrashes` of them. Once open it stays
 * open until `reset()` (an operator's reload), however much time passes.
 */
export class CircuitBreaker {
  readonly maxCrashes: number
  readonly windowMs: number
  #crashTimes: number[] = []
  #open = false

  constructor({ maxCrashes, windowMs }: { maxCrashes: number; windowMs: number }) {
    if (!Number.isInteger(maxCrashes) || maxCrashes < 1) {
      throw new RangeError(`maxCrashes must be a positive integer, got ${String(maxCrashes)}`)
    }
    this.maxCrashes = maxCrashes
    this.windowMs = windowMs
  }

  get open(): boolean {
    return this.#open
  }

  /** Crashes within the window ending at `nowMs`. */
  recentCrashes(nowMs: number): number {
    return this.#crashTimes.filter((t) => nowMs - t < this.windowMs).length
  }

  record(nowMs: number): CrashRecord {
    this.#crashTimes = this.#crashTimes.filter((t) => nowMs - t < this.windowMs)
    this.#crashTimes.push(nowMs)
    if (this.#crashTimes.length >= this.maxCrashes) this.#open = true
    return { crashes: this.#crashTimes.length, open: this.#open }
  }

  reset(): void {
    this.#crashTimes = []
    this.#open = false
  }
}
