import type { DownloadProgress } from '../../protocol/index.ts'

/** The rate is measured over this much recent time, so a stall shows within it. */
export const RATE_WINDOW_MS = 5_000

/** Samples closer together than this are not kept (a chunk arrives every few microseconds on a fast link). */
export const RATE_SAMPLE_INTERVAL_MS = 100

/** Bytes fetched over time: the rate over the recent window and the time left at that rate. */
export class RateMeter {
  readonly #samples: Array<{ at: number; bytes: number }> = []
  readonly #now: () => number
  #latest = { at: 0, bytes: 0 }

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Records the running total of bytes. */
  record(bytes: number): void {
    const at = this.#now()
    this.#latest = { at, bytes }
    const last = this.#samples[this.#samples.length - 1]
    if (last !== undefined && at - last.at < RATE_SAMPLE_INTERVAL_MS) return
    this.#samples.push({ at, bytes })
    while (this.#samples.length > 2 && (this.#samples[1]?.at ?? at) < at - RATE_WINDOW_MS) this.#samples.shift()
  }

  bytesPerSecond(): number {
    const first = this.#samples[0]
    const last = this.#latest
    if (!first || last.at <= first.at) return 0
    return Math.round(((last.bytes - first.bytes) * 1000) / (last.at - first.at))
  }

  progress({ file, done, total }: { file: string; done: number; total: number | null }): DownloadProgress {
    const rate = this.bytesPerSecond()
    const eta = total === null || rate === 0 ? null : Math.round(((total - done) * 1000) / rate)
    return { file, bytes_done: done, bytes_total: total, bytes_per_s: rate, eta_ms: eta === null ? null : Math.max(0, eta) }
  }
}
