import { MIN_ADMIN_TOKEN_LENGTH } from './local/admin-token.ts'

/** Hosts of this machine: a Worker on Cloudflare cannot reach them. */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '0.0.0.0', '[::1]'])
/** Schemes `@libsql/client` speaks over TLS; `http:` and `ws:` would send the token in the clear. */
const TLS_SCHEMES = new Set(['libsql:', 'https:', 'wss:'])

/**
 * What is wrong with the secrets a deploy would set from `file`, each naming the secret:
 * `LIBSQL_URL` must be a TLS URL of another machine, a remote registry needs `LIBSQL_AUTH_TOKEN`,
 * and `ADMIN_TOKEN` must be at least as long as the one `npm start` generates.
 * `allowLocalRegistry` accepts a plain-http registry on this machine (an offline stand-in).
 */
export function secretsFileProblems(
  file: string,
  secrets: Readonly<Record<string, string | undefined>>,
  { allowLocalRegistry = false }: { allowLocalRegistry?: boolean } = {},
): string[] {
  const problems: string[] = []
  const url = secrets.LIBSQL_URL
  let local = false
  if (!url) problems.push(`${file}: LIBSQL_URL is missing; the Worker needs the registry's URL (libsql://… from turso db show --url)`)
  else if (!URL.canParse(url)) problems.push(`${file}: LIBSQL_URL = ${JSON.stringify(url)} is not a URL; expected libsql://… or https://…`)
  else {
    const parsed = new URL(url)
    local = LOCAL_HOSTS.has(parsed.hostname)
    if (local && !allowLocalRegistry) problems.push(`${file}: LIBSQL_URL = ${JSON.stringify(url)} points at this machine; a deployed Worker cannot reach it`)
    if (!TLS_SCHEMES.has(parsed.protocol) && !(local && allowLocalRegistry)) {
      problems.push(
        `${file}: LIBSQL_URL = ${JSON.stringify(url)} is plain ${parsed.protocol.slice(0, -1)}; use libsql:// or https:// so the token is not sent in the clear`,
      )
    }
  }
  if (url && !local && !secrets.LIBSQL_AUTH_TOKEN)
    problems.push(`${file}: LIBSQL_AUTH_TOKEN is missing; a remote registry needs its token (turso db tokens create)`)
  const admin = secrets.ADMIN_TOKEN
  if (!admin) problems.push(`${file}: ADMIN_TOKEN is missing; without it every admin call is refused (openssl rand -hex 32 makes one)`)
  else if (admin.length < MIN_ADMIN_TOKEN_LENGTH)
    problems.push(`${file}: ADMIN_TOKEN is ${admin.length} characters; use at least ${MIN_ADMIN_TOKEN_LENGTH} (openssl rand -hex 32 makes one)`)
  return problems
}
