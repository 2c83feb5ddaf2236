import { drizzle } from 'drizzle-orm/libsql'
import { migrate } from 'drizzle-orm/libsql/migrator'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const MIGRATIONS_FOLDER = path.resolve(import.meta.dirname, '../../../migrations')

describe('libsql server with the project migrations', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('creates the registry tables when drizzle migrations are applied, and applies them once', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    const db = drizzle(client)
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })

    const tables = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    expect(tables.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['nodes', 'pools', 'replicas', 'api_keys', 'usage']))
    expect((await client.execute('SELECT count(*) AS n FROM __drizzle_migrations')).rows[0]?.n).toBeGreaterThan(0)
    // The migrator turns foreign keys off for its batch; the server's connections keep them on.
    expect((await client.execute('PRAGMA foreign_keys')).rows[0]?.foreign_keys).toBe(1)
  })
})
