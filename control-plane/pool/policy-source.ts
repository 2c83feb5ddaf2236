import type { Registry } from '../../db/client.ts'
import type { PoolPolicy } from '../../protocol/index.ts'
import { logError } from '../runtime/log.ts'
import { findPool, policyOf } from '../registry/pools.ts'
import type { AdmissionRefusal } from './grant.ts'
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
