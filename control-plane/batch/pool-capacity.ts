import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import { registryFor } from '../registry/registry-for.ts'
import { policyFromRegistry } from '../pool/policy-source.ts'
import { batchSlots } from '../pool/batch-share.ts'

/** How long the pool's count of ready slots is trusted before the pool is asked again. */
const SLOTS_REFRESH_MS = 1_000
/** How long the pool's `batch_slot_share` is trusted before the registry is read again. */
const SHARE_REFRESH_MS = 10_000

/**
 * How many lines of a batch may run at once in its pool, from the pool's ready slots (asked of
 * its PoolObject) and its `batch_slot_share` (read from the registry). When either cannot be
 * read, the last known value stands.
 */
export class PoolCapacity {
  readonly #env: Bindings
  readonly #poolId: string
  #slots = { count: 1, readAt: Number.NEGATIVE_INFINITY }
  #share = { value: 1, readAt: Number.NEGATIVE_INFINITY }

  constructor(env: Bindings, poolId: string) {
    this.#env = env
    this.#poolId = poolId
  }

  async lines(now: number): Promise<number> {
    await Promise.all([this.#readSlots(now), this.#readShare(now)])
    return batchSlots(this.#slots.count, this.#share.value)
  }

  async #readSlots(now: number): Promise<void> {
    if (now - this.#slots.readAt < SLOTS_REFRESH_MS) return
    this.#slots.readAt = now
    try {
      const status = await this.#env.POOLS.getByName(this.#poolId).status()
      this.#slots.count = status.replicas.filter((r) => r.state === 'ready').reduce((sum, r) => sum + r.slots, 0)
    } catch (error) {
      logError('batch.slots_unknown', { pool: this.#poolId, error: String(error) })
    }
  }

  async #readShare(now: number): Promise<void> {
    if (now - this.#share.readAt < SHARE_REFRESH_MS) return
    this.#share.readAt = now
    const known = await policyFromRegistry(registryFor(this.#env), this.#poolId)
    if (known.ok) this.#share.value = known.policy.batch_slot_share
  }
}
