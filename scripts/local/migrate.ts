import { migrate } from 'drizzle-orm/libsql/migrator'
import path from 'node:path'
import { createRegistry } from '../../db/client.ts'
import { PROJECT_ROOT } from './build-worker.ts'

export const MIGRATIONS_FOLDER = path.join(PROJECT_ROOT, 'migrations')

/** Applies every migration drizzle-kit generated that the registry at `url` has not seen yet. */
export async function applyMigrations({ url, authToken }: { url: string; authToken?: string | undefined }): Promise<void> {
  await migrate(createRegistry({ url, authToken }), { migrationsFolder: MIGRATIONS_FOLDER })
}
