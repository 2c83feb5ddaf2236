import { z } from 'zod'
import { describeIssues } from '../protocol/index.ts'
import { applyMigrations } from './local/migrate.ts'

const MigrateEnv = z.object({
  LIBSQL_URL: z.url({ protocol: /^(https?|libsql)$/, error: 'expected an http(s):// or libsql:// URL' }),
  LIBSQL_AUTH_TOKEN: z.string().optional(),
})

const parsed = MigrateEnv.safeParse(process.env)
if (!parsed.success) {
  console.error(`db:migrate: ${describeIssues(parsed.error.issues)}`)
  console.error('Set LIBSQL_URL (and LIBSQL_AUTH_TOKEN for Turso or a server with auth), e.g. LIBSQL_URL=http://127.0.0.1:8880 npm run db:migrate')
  process.exit(2)
}
const { LIBSQL_URL, LIBSQL_AUTH_TOKEN } = parsed.data
await applyMigrations({ url: LIBSQL_URL, authToken: LIBSQL_AUTH_TOKEN })
console.log(`db:migrate: ${LIBSQL_URL} is up to date`)
