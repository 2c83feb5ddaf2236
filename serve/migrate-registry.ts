import { readFileSync } from 'node:fs'
import path from 'node:path'
import { drizzle } from 'drizzle-orm/libsql'
import { migrate } from 'drizzle-orm/libsql/migrator'
import { z } from 'zod'
import { openRegistryFile } from './registry-file.ts'

const Journal = z.object({ entries: z.array(z.object({ tag: z.string() })) })

/** The migrations a release carries, in order (drizzle-kit's journal). */
export function releaseMigrations(migrationsFolder: string): string[] {
  return Journal.parse(JSON.parse(readFileSync(path.join(migrationsFolder, 'meta/_journal.json'), 'utf8'))).entries.map((e) => e.tag)
}

/** How many migrations the registry file has applied; 0 for a new one. */
export async function appliedMigrationCount(registryFile: string): Promise<number> {
  const client = openRegistryFile(registryFile)
  try {
    const table = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'")
    if (table.rows.length === 0) return 0
    return Number((await client.execute('SELECT count(*) FROM __drizzle_migrations')).rows[0]?.[0] ?? 0)
  } finally {
    client.close()
  }
}

/** Applies the release's migrations to the registry file directly (no server needed). */
export async function migrateRegistryFile(registryFile: string, migrationsFolder: string): Promise<void> {
  const client = openRegistryFile(registryFile)
  try {
    await migrate(drizzle(client), { migrationsFolder })
  } finally {
    client.close()
  }
}
