import { and, eq, isNull } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { apiKeys } from '../../db/schema.ts'
import type { ApiKeyRow } from '../../db/schema.ts'
import type { ApiKeyScope, KeyLimits } from '../../protocol/index.ts'

export async function insertApiKey(
  db: Registry,
  row: { id: string; name: string; keyHash: string; prefix: string; scopes: ApiKeyScope[]; limits: KeyLimits },
): Promise<ApiKeyRow> {
  const [inserted] = await db.insert(apiKeys).values(row).returning()
  if (!inserted) throw new Error('insert into api_keys returned no row')
  return inserted
}

export async function findApiKey(db: Registry, id: string): Promise<ApiKeyRow | undefined> {
  return db.query.apiKeys.findFirst({ where: eq(apiKeys.id, id) })
}

export async function listApiKeys(db: Registry): Promise<ApiKeyRow[]> {
  return db.select().from(apiKeys).orderBy(apiKeys.createdAt)
}

/** Marks the key revoked; false when no live key had that id. */
export async function revokeApiKey(db: Registry, id: string, now: Date): Promise<boolean> {
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id })
  return revoked.length > 0
}

/** Replaces the key's limits; undefined when no key has that id. */
export async function setApiKeyLimits(db: Registry, id: string, limits: KeyLimits): Promise<ApiKeyRow | undefined> {
  const [row] = await db.update(apiKeys).set({ limits }).where(eq(apiKeys.id, id)).returning()
  return row
}
