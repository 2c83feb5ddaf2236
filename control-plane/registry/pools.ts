import { eq } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { pools } from '../../db/schema.ts'
import type { PoolRow } from '../../db/schema.ts'
import { DEFAULT_BATCH_AGING_MS } from '../../protocol/index.ts'
import type { EngineKind, PatchPoolRequest, PoolPolicy } from '../../protocol/index.ts'

export async function findPool(db: Registry, id: string): Promise<PoolRow | undefined> {
  return db.query.pools.findFirst({ where: eq(pools.id, id) })
}

export async function listPools(db: Registry): Promise<PoolRow[]> {
  return db.select().from(pools).orderBy(pools.id)
}

/**
 * Registers a pool the first time an agent offers it, with the default policy, and returns the
 * row as stored. An existing pool keeps its engine kind: the caller compares and refuses a
 * replica of another kind.
 */
export async function ensurePool(db: Registry, { id, engine }: { id: string; engine: EngineKind }): Promise<PoolRow> {
  await db.insert(pools).values({ id, engine }).onConflictDoNothing()
  const row = await findPool(db, id)
  if (!row) throw new Error(`pool ${id} vanished after insert`)
  return row
}

export async function updatePoolPolicy(db: Registry, id: string, patch: PatchPoolRequest, now: Date): Promise<PoolRow | undefined> {
  const [row] = await db
    .update(pools)
    .set({
      ...(patch.queue_capacity !== undefined ? { queueCapacity: patch.queue_capacity } : {}),
      ...(patch.default_priority !== undefined ? { defaultPriority: patch.default_priority } : {}),
      ...(patch.first_token_timeout_ms !== undefined ? { firstTokenTimeoutMs: patch.first_token_timeout_ms } : {}),
      ...(patch.idle_timeout_ms !== undefined ? { idleTimeoutMs: patch.idle_timeout_ms } : {}),
      ...(patch.batch_aging_ms !== undefined ? { batchAgingMs: patch.batch_aging_ms } : {}),
      ...(patch.key_limits !== undefined ? { keyLimits: patch.key_limits } : {}),
      ...(patch.preload_mode !== undefined ? { preloadMode: patch.preload_mode } : {}),
      ...(patch.idle_drain_ms !== undefined ? { idleDrainMs: patch.idle_drain_ms } : {}),
      ...(patch.queue_timeout_ms !== undefined ? { queueTimeoutMs: patch.queue_timeout_ms } : {}),
      ...(patch.run_timeout_ms !== undefined ? { runTimeoutMs: patch.run_timeout_ms } : {}),
      ...(patch.scale_out_wait_ms !== undefined ? { scaleOutWaitMs: patch.scale_out_wait_ms } : {}),
      updatedAt: now,
    })
    .where(eq(pools.id, id))
    .returning()
  return row
}

export function policyOf(row: PoolRow): PoolPolicy {
  return {
    queue_capacity: row.queueCapacity,
    preload_mode: row.preloadMode,
    idle_drain_ms: row.idleDrainMs,
    default_priority: row.defaultPriority,
    first_token_timeout_ms: row.firstTokenTimeoutMs,
    idle_timeout_ms: row.idleTimeoutMs,
    batch_aging_ms: row.batchAgingMs ?? DEFAULT_BATCH_AGING_MS,
    key_limits: row.keyLimits,
    queue_timeout_ms: row.queueTimeoutMs,
    run_timeout_ms: row.runTimeoutMs,
    scale_out_wait_ms: row.scaleOutWaitMs,
  }
}
