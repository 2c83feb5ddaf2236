import { eq } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { pools } from '../../db/schema.ts'
import type { PoolRow } from '../../db/schema.ts'
import { PoolPolicy } from '../../protocol/index.ts'
import type { EngineKind, PatchPoolRequest } from '../../protocol/index.ts'

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

/**
 * The `pools` columns of a policy or a patch of one, the one mapping from the API's field names
 * to the registry's: a field left out is undefined, which drizzle's `set` leaves as it is.
 */
export function policyColumns(policy: Partial<PoolPolicy>) {
  return {
    queueCapacity: policy.queue_capacity,
    preloadMode: policy.preload_mode,
    idleDrainMs: policy.idle_drain_ms,
    defaultPriority: policy.default_priority,
    firstTokenTimeoutMs: policy.first_token_timeout_ms,
    idleTimeoutMs: policy.idle_timeout_ms,
    batchAgingMs: policy.batch_aging_ms,
    batchSlotShare: policy.batch_slot_share,
    keyLimits: policy.key_limits,
    queueTimeoutMs: policy.queue_timeout_ms,
    runTimeoutMs: policy.run_timeout_ms,
    scaleOutWaitMs: policy.scale_out_wait_ms,
  } satisfies { [Column in keyof PoolRow]?: PoolRow[Column] | undefined }
}

export async function updatePoolPolicy(db: Registry, id: string, patch: PatchPoolRequest, now: Date): Promise<PoolRow | undefined> {
  const [row] = await db
    .update(pools)
    .set({ ...policyColumns(patch), updatedAt: now })
    .where(eq(pools.id, id))
    .returning()
  return row
}

/** A policy field's column in `pools`: the same name in camelCase, as `policyColumns` maps it. */
export function policyColumnOf(field: string): string {
  return field.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase())
}

/** The policy a registry row holds; a column left null reads as its field's default. */
export function policyOf(row: PoolRow): PoolPolicy {
  const columns: Record<string, unknown> = row
  return PoolPolicy.parse(Object.fromEntries(Object.keys(PoolPolicy.shape).map((field) => [field, columns[policyColumnOf(field)] ?? undefined])))
}
