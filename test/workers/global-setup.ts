import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { startLibsqlServer } from '../../db/libsql-server/index.ts'
import { applyMigrations } from '../../scripts/local/migrate.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    libsqlUrl: string
    libsqlAuthToken: string
    /** `FUZZ_SEED` from the environment, so a failed property can be replayed (test/support/property-run.ts). */
    fuzzSeed: string
  }
}

/**
 * The Workers tests reach a real registry: the local libSQL server over HTTP, migrated with the
 * project's migrations, exactly as the deployed Worker reaches Turso.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-workers-'))
  const authToken = 'workers-test-libsql-token'
  const server = await startLibsqlServer({ file: path.join(dir, 'registry.db'), authToken })
  await applyMigrations({ url: server.url, authToken })
  project.provide('libsqlUrl', server.url)
  project.provide('libsqlAuthToken', authToken)
  project.provide('fuzzSeed', process.env.FUZZ_SEED ?? '')
  return async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
