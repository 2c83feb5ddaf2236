/**
 * Reads of the registry's pool list by one isolate are at least this far apart, and a name missing
 * from a read this recent is no pool's: a pool an agent offered in the last 250 ms may be missed.
 */
export const POOL_LIST_REFRESH_MS = 250
/** Longest a request waits to learn whether its model is a pool; then the pool's object judges it. */
export const POOL_LIST_WAIT_MS = 2_000

/** What the isolate can say of a model name: a pool's, no pool's, or unsure (the registry did not answer in time). */
export type PoolNameLookup = 'known' | 'unknown' | 'unsure'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The registry's pool ids as this isolate read them, so that a model name no pool has is
 * answered 404 without creating a PoolObject for it. Pools are only ever added (an agent offers
 * one), so a known id stays known and costs no read. A name not in the list is answered from a
 * read at most `POOL_LIST_REFRESH_MS` older than the request, else after a new one; reads are that
 * far apart, and a request that needs one meanwhile waits for the next. It holds only ids the
 * registry has, nothing a client sent: any number of made-up names costs at most four reads a
 * second per isolate and no storage.
 */
export class PoolNames {
  readonly #ids = new Set<string>()
  /** When the last read began, whatever came of it. */
  #lastReadAt = Number.NEGATIVE_INFINITY
  /** When the last successful read began: a name missing from it was no pool's then. */
  #freshAsOf = Number.NEGATIVE_INFINITY

  /** `readIds` reads the registry's pool ids. */
  async lookup(id: string, readIds: () => Promise<readonly string[]>, arrivedAt: number): Promise<PoolNameLookup> {
    for (;;) {
      if (this.#ids.has(id)) return 'known'
      if (this.#freshAsOf > arrivedAt - POOL_LIST_REFRESH_MS) return 'unknown'
      const now = Date.now()
      if (now - arrivedAt >= POOL_LIST_WAIT_MS) return 'unsure'
      const nextReadAt = this.#lastReadAt + POOL_LIST_REFRESH_MS
      if (now < nextReadAt) {
        await sleep(Math.min(nextReadAt, arrivedAt + POOL_LIST_WAIT_MS) - now)
        continue
      }
      // This request's own read began after it came: its answer is final.
      if (!(await this.#read(readIds, now))) return 'unsure'
      return this.#ids.has(id) ? 'known' : 'unknown'
    }
  }

  async #read(readIds: () => Promise<readonly string[]>, now: number): Promise<boolean> {
    this.#lastReadAt = now
    try {
      for (const id of await readIds()) this.#ids.add(id)
      this.#freshAsOf = Math.max(this.#freshAsOf, now)
      return true
    } catch {
      return false
    }
  }
}
