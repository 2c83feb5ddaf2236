import { readFileSync } from 'node:fs'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import { migrate } from 'drizzle-orm/libsql/migrator'
import { z } from 'zod'
import { createRegistry } from '../../db/client.ts'
import type { Registry } from '../../db/client.ts'
import { PROJECT_ROOT } from './project-root.ts'

export const MIGRATIONS_FOLDER = path.join(PROJECT_ROOT, 'migrations')

/** drizzle-kit's list of migrations: `when` is what the migrator stores as `created_at`. */
const Journal = z.object({ entries: z.array(z.object({ when: z.int(), tag: z.string() })) })

/** The `created_at` of the newest migration the registry has applied, 0 for none. */
async function lastApplied(db: Registry): Promise<number> {
  const table = await db.all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'`)
  if (table.length === 0) return 0
  const [row] = await db.all<{ last: number | null }>(sql`SELECT max(created_at) AS last FROM __drizzle_migrations`)
  return Number(row?.last ?? 0)
}

/**
 * Applies every migration drizzle-kit generated that the registry at `url` has not seen yet and
 * answers their names (`0000_init`, …), none when it was up to date.
 */
export async function applyMigrations({ url, authToken }: { url: string; authToken?: string | undefined }): Promise<string[]> {
  const db = createRegistry({ url, authToken })
  const before = await lastApplied(db)
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
  const journal = Journal.parse(JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')))
  return journal.entries.filter((entry) => entry.when > before).map((entry) => entry.tag)
}
