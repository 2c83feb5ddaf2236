import type { Registry } from '../../db/client.ts'
import { DEFAULT_POOL_POLICY } from '../../protocol/index.ts'
import type { PoolPolicy } from '../../protocol/index.ts'
import { logError } from '../runtime/log.ts'
import { findPool, policyOf } from '../registry/pools.ts'
import type { AdmissionRefusal } from './grant.ts'
import type { PoolStorage } from './pool-storage.ts'
import { poolRefusals } from './refusals.ts'

/** A pool's policy as the registry has it; a pool the registry lacks does not exist. */
export async function policyFromRegistry(
  registry: Registry,
  poolId: string,
): Promise<{ ok: true; policy: PoolPolicy } | { ok: false; refusal: AdmissionRefusal }> {
  let row: Awaited<ReturnType<typeof findPool>>
  try {
    row = await findPool(registry, poolId)
  } catch (error) {
    logError('pool.registry_read_failed', { pool: poolId, error: String(error) })
    return { ok: false, refusal: poolRefusals.registryUnavailable(poolId) }
  }
  if (!row) return { ok: false, refusal: poolRefusals.modelNotFound(poolId) }
  return { ok: true, policy: policyOf(row) }
}

/** The pool's policy: stored in the object once read, read from the registry (once) before that. */
export class PoolPolicySource {
  readonly #store: PoolStorage
  readonly #poolId: string
  readonly #registry: () => Registry
  /** The stored policy, read once per instance. */
  #known: PoolPolicy | null = null

  constructor(store: PoolStorage, { poolId, registry }: { poolId: string; registry: () => Registry }) {
    this.#store = store
    this.#poolId = poolId
    this.#registry = registry
  }

  /** The policy stored in the object, or null before the registry was read. */
  known(): PoolPolicy | null {
    this.#known ??= this.#store.policy()
    return this.#known
  }

  /** The known policy, else the defaults (a retry may come before the policy is read). */
  orDefaults(): PoolPolicy {
    return this.known() ?? DEFAULT_POOL_POLICY
  }

  /** The known policy, else the registry's, stored from then on. */
  async load(): Promise<{ ok: true; policy: PoolPolicy } | { ok: false; refusal: AdmissionRefusal }> {
    const known = this.known()
    if (known) return { ok: true, policy: known }
    const read = await policyFromRegistry(this.#registry(), this.#poolId)
    if (read.ok) this.set(read.policy)
    return read
  }

  set(policy: PoolPolicy): void {
    this.#store.setPolicy(policy)
    this.#known = policy
  }
}
