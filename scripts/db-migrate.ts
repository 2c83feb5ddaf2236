/**
 * `npm run db:migrate [-- --url URL --auth-token TOKEN | --secrets-file FILE]`: applies the migrations
 * to the registry. The URL and token come from the flags, else LIBSQL_URL and LIBSQL_AUTH_TOKEN in
 * the environment, else the same names in the secrets file (the one `wrangler deploy --secrets-file`
 * reads, so one file serves both steps of a deploy).
 */
import { readFileSync } from 'node:fs'
import { parseArgs, parseEnv } from 'node:util'
import { DrizzleQueryError } from 'drizzle-orm'
import { z } from 'zod'
import { describeIssues } from '../protocol/index.ts'
import { applyMigrations } from './local/migrate.ts'

const MigrateEnv = z.object({
  LIBSQL_URL: z.url({ protocol: /^(https?|libsql)$/, error: 'expected an http(s):// or libsql:// URL' }),
  LIBSQL_AUTH_TOKEN: z.string().optional(),
})

/**
 * One line from an error and its causes: drizzle's "Failed query" wrapper (which repeats the SQL)
 * is skipped and a cause whose text is already there is dropped, leaving e.g.
 * "fetch failed: connect ECONNREFUSED 127.0.0.1:8880".
 */
function describeFailure(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (; current instanceof Error; current = current.cause) {
    if (current instanceof DrizzleQueryError) continue
    const { message } = current
    if (message && !parts.some((part) => part.includes(message))) parts.push(message)
  }
  if (current !== undefined && !(current instanceof Error)) parts.push(String(current))
  return parts.join(': ') || 'unknown error'
}

/** True when the server refused the token (libSQL clients report `code: 'UNAUTHORIZED'`). */
function isUnauthorized(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if ('code' in current && current.code === 'UNAUTHORIZED') return true
  }
  return false
}

const { values: flags } = parseArgs({ options: { url: { type: 'string' }, 'auth-token': { type: 'string' }, 'secrets-file': { type: 'string' } } })
let fromFile: Record<string, string | undefined> = {}
if (flags['secrets-file'] !== undefined) {
  try {
    fromFile = parseEnv(readFileSync(flags['secrets-file'], 'utf8'))
  } catch (error) {
    console.error(`db:migrate: cannot read ${flags['secrets-file']} (${error instanceof Error && 'code' in error ? String(error.code) : String(error)})`)
    process.exit(2)
  }
}
const parsed = MigrateEnv.safeParse({
  LIBSQL_URL: flags.url ?? process.env.LIBSQL_URL ?? fromFile.LIBSQL_URL,
  LIBSQL_AUTH_TOKEN: flags['auth-token'] ?? process.env.LIBSQL_AUTH_TOKEN ?? fromFile.LIBSQL_AUTH_TOKEN,
})
if (!parsed.success) {
  console.error(`db:migrate: ${describeIssues(parsed.error.issues)}`)
  console.error(
    'Set LIBSQL_URL (and LIBSQL_AUTH_TOKEN for Turso or a server with auth), e.g. LIBSQL_URL=http://127.0.0.1:8880 npm run db:migrate, or pass --url/--auth-token or --secrets-file FILE',
  )
  process.exit(2)
}
const { LIBSQL_URL, LIBSQL_AUTH_TOKEN } = parsed.data
let applied: string[]
try {
  applied = await applyMigrations({ url: LIBSQL_URL, authToken: LIBSQL_AUTH_TOKEN })
} catch (error) {
  const hint = isUnauthorized(error) ? (LIBSQL_AUTH_TOKEN ? ' (check LIBSQL_AUTH_TOKEN)' : ' (set LIBSQL_AUTH_TOKEN)') : ''
  console.error(`db:migrate: could not apply migrations to ${LIBSQL_URL}: ${describeFailure(error)}${hint}`)
  process.exit(1)
}
console.log(
  applied.length === 0
    ? `db:migrate: ${LIBSQL_URL} is up to date; no migration to apply`
    : `db:migrate: applied ${applied.join(', ')} to ${LIBSQL_URL}; it is up to date`,
)
