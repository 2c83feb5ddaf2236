import { readMigrationFiles } from 'drizzle-orm/migrator'
import { execa } from 'execa'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const SCRIPT = path.resolve(import.meta.dirname, '../../../scripts/db-migrate.ts')
const MIGRATIONS_FOLDER = path.resolve(import.meta.dirname, '../../../migrations')
const AUTH_TOKEN = 'db-migrate-test-token-0123456789'
const REGISTRY_TABLES = ['api_keys', 'nodes', 'pools', 'replicas', 'usage']

/** Runs `npm run db:migrate`'s command with exactly these LIBSQL_* variables (none inherited). */
function runMigrate(vars: { LIBSQL_URL?: string; LIBSQL_AUTH_TOKEN?: string }, args: string[] = []) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LIBSQL_')))
  return execa(process.execPath, [SCRIPT, ...args], { env: { ...env, ...vars }, extendEnv: false, reject: false, timeout: 20_000 })
}

describe('npm run db:migrate', () => {
  let running: TestLibsqlServer | undefined
  afterEach(async () => {
    await running?.close()
    running = undefined
  })

  /** A server with auth on port 0 over a fresh file; closed and removed after the test. */
  async function startServer(): Promise<TestLibsqlServer> {
    running = await startTestLibsqlServer({ authToken: AUTH_TOKEN })
    return running
  }

  it('names the migrations it applied to an empty registry, then says it is up to date', async () => {
    const server = await startServer()
    const vars = { LIBSQL_URL: server.url, LIBSQL_AUTH_TOKEN: AUTH_TOKEN }
    const tags = z
      .object({ entries: z.array(z.object({ tag: z.string() })) })
      .parse(JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')))
      .entries.map((e) => e.tag)
    expect(tags[0]).toBe('0000_init')

    const first = await runMigrate(vars)
    expect(first.exitCode, first.stderr).toBe(0)
    expect(first.stdout).toBe(`db:migrate: applied ${tags.join(', ')} to ${server.url}; it is up to date`)
    const second = await runMigrate(vars)
    expect(second.exitCode, second.stderr).toBe(0)
    expect(second.stdout).toBe(`db:migrate: ${server.url} is up to date; no migration to apply`)

    const client = server.client('node', { authToken: AUTH_TOKEN })
    const tables = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    expect(tables.rows.map((row) => row.name)).toEqual(expect.arrayContaining(REGISTRY_TABLES))
    const applied = await client.execute('SELECT count(*) AS n FROM __drizzle_migrations')
    expect(applied.rows[0]?.n).toBe(readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER }).length)
  })

  it('takes the URL and token from --url and --auth-token, or from the --secrets-file a deploy uses', async () => {
    const server = await startServer()
    const byFlags = await runMigrate({}, ['--url', server.url, '--auth-token', AUTH_TOKEN])
    expect(byFlags.stdout).toMatch(new RegExp(`^db:migrate: applied 0000_init, .* to ${server.url}; it is up to date$`))
    const dir = mkdtempSync(path.join(tmpdir(), 'llorch-migrate-'))
    try {
      const file = path.join(dir, 'production.env')
      writeFileSync(file, `LIBSQL_URL=${server.url}\nLIBSQL_AUTH_TOKEN=${AUTH_TOKEN}\nADMIN_TOKEN=not-used-by-migrations-0123\n`)
      const byFile = await runMigrate({}, ['--secrets-file', file])
      expect(byFile.stdout).toBe(`db:migrate: ${server.url} is up to date; no migration to apply`)
      // The environment wins over the file, as with wrangler --secrets-file.
      const overridden = await runMigrate({ LIBSQL_AUTH_TOKEN: 'not-the-token' }, ['--secrets-file', file])
      expect(overridden.stderr).toContain('(check LIBSQL_AUTH_TOKEN)')
      const missing = await runMigrate({}, ['--secrets-file', path.join(dir, 'missing.env')])
      expect(missing.exitCode).toBe(2)
      expect(missing.stderr.trim()).toBe(`db:migrate: cannot read ${path.join(dir, 'missing.env')} (ENOENT)`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('exits with status 2 and names LIBSQL_URL when it is missing', async () => {
    const result = await runMigrate({})
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('db:migrate: LIBSQL_URL: ')
    expect(result.stdout).toBe('')
  })

  it('exits with status 2 and names LIBSQL_URL when it is not a URL', async () => {
    const result = await runMigrate({ LIBSQL_URL: '127.0.0.1:8880' })
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('db:migrate: LIBSQL_URL: expected an http(s):// or libsql:// URL')
  })

  it('exits with status 1 and one line naming the refused token when the token is wrong', async () => {
    const server = await startServer()
    const result = await runMigrate({ LIBSQL_URL: server.url, LIBSQL_AUTH_TOKEN: 'not-the-token' })
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr.split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(new RegExp(`^db:migrate: could not apply migrations to ${server.url}: UNAUTHORIZED: .*\\(check LIBSQL_AUTH_TOKEN\\)$`))
    expect(result.stderr).not.toContain('not-the-token')

    const tables = await server.client('node', { authToken: AUTH_TOKEN }).execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    expect(tables.rows).toEqual([])
  })

  it('exits with status 1 and asks for a token when the server needs one and none is set', async () => {
    const server = await startServer()
    const result = await runMigrate({ LIBSQL_URL: server.url })
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(/^db:migrate: could not apply migrations to .*: UNAUTHORIZED: .*\(set LIBSQL_AUTH_TOKEN\)$/)
  })

  it('exits with status 1 and names the URL when nothing listens there', async () => {
    const closed = await startTestLibsqlServer()
    await closed.close()
    const result = await runMigrate({ LIBSQL_URL: closed.url })
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(new RegExp(`^db:migrate: could not apply migrations to ${closed.url}: fetch failed: .*ECONNREFUSED`))
  })
})
