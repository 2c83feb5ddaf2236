/**
 * A local libSQL server: Hrana over HTTP (the `/v2/pipeline` and `/v3/pipeline` JSON endpoints
 * that @libsql/client and drizzle-orm/libsql use) on top of the embedded `libsql` engine and one
 * database file. For development, tests and single-machine use; sqld, `turso dev` or Turso
 * cloud replace it by changing the URL.
 *
 * What it does: execute, batch (conditions ok, error, not, and, or, is_autocommit), sequence,
 * describe, store_sql/close_sql (sqld's limits: 50 texts of 5,000 bytes per stream),
 * get_autocommit and close; interactive transactions on streams held by single-use random batons
 * that expire after STREAM_IDLE_TIMEOUT_MS idle (rolling back); a connection of its own for each
 * open stream (pooled between streams, reset or dropped in between), in WAL mode with foreign
 * keys on and busy_timeout 0, SQLITE_BUSY being retried asynchronously up to BUSY_RETRY_LIMIT_MS;
 * an optional shared Bearer token on the pipeline endpoints.
 *
 * Limits (what it does not implement or does differently):
 * - Protobuf encoding: `/v3-protobuf` answers 404, so clients fall back to JSON.
 * - Hrana over WebSocket (`ws://`, `wss://`, and `libsql://` URLs that pick WebSocket): use `http://`.
 * - Cursors (`/v3/cursor`): not served; @libsql/client does not use them over HTTP.
 * - Replication, embedded replicas and sync, `replication_index`, namespaces (one database per
 *   server), JWT auth (one shared token, required to bind anything but loopback; `/v2`, `/v3` and `/health`
 *   answer without it), TLS
 *   (bind to 127.0.0.1 or put a proxy in front), the legacy `/v1` HTTP API, sqld's admin API.
 * - `base_url` is always null; `rows_read`, `rows_written` and `query_duration_ms` are not reported.
 * - Error codes are the engine's extended SQLite codes (`SQLITE_CONSTRAINT_UNIQUE`) where sqld
 *   reports primary ones (`SQLITE_CONSTRAINT`); syntax errors are SQLITE_ERROR, not SQL_PARSE_ERROR.
 * - A deferred transaction that read before another stream committed a write fails with
 *   SQLITE_BUSY_SNAPSHOT when it then writes (SQLite's rule; not retried). A transaction in which
 *   a statement gave up on SQLITE_BUSY can only be rolled back: the engine cannot reset that
 *   statement, so COMMIT fails with "SQL statements in progress".
 * - synchronous=NORMAL: a power loss (not a crash of this process) can lose the last commits.
 * - At most MAX_OPEN_STREAMS open streams; statements run synchronously on the event loop, so
 *   one long query delays every other stream.
 */
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import path from 'node:path'
import { z } from 'zod'
import { describeIssues } from '../../protocol/describe-issues.ts'
import { BUSY_RETRY_LIMIT_MS } from './busy-retry.ts'
import { EngineConnection } from './connection.ts'
import { createHranaHandler } from './http-server.ts'
import { silentLog, type Log } from './log.ts'
import { STREAM_IDLE_TIMEOUT_MS, StreamRegistry } from './streams.ts'

/** How long close() lets in-flight requests finish before cutting their connections. */
export const CLOSE_GRACE_MS = 2_000

export const LibsqlServerOptions = z.object({
  file: z
    .string()
    .min(1, 'expected the path of a database file')
    .refine(
      (f) => f !== ':memory:' && !f.startsWith('file:'),
      'expected a file path (each stream opens its own connection, so :memory: and URIs are not supported)',
    ),
  port: z.number().int().min(0).max(65_535).default(0),
  host: z.string().min(1).default('127.0.0.1'),
  authToken: z.string().min(1, 'expected a non-empty token').optional(),
  streamIdleTimeoutMs: z.number().int().positive().default(STREAM_IDLE_TIMEOUT_MS),
  busyRetryLimitMs: z.number().int().min(0).default(BUSY_RETRY_LIMIT_MS),
})

/**
 * `file` is created with its folder if missing; `port` 0 (the default) picks a free port; `host`
 * defaults to 127.0.0.1; `authToken` turns on Bearer auth and is
 * required to bind anything but loopback; `streamIdleTimeoutMs` and
 * `busyRetryLimitMs` exist for tests; `log` receives boundary events (silent by default).
 */
export type LibsqlServerOptions = z.input<typeof LibsqlServerOptions> & { log?: Log }

export interface LibsqlServer {
  /** Base URL for `createClient({ url })`. */
  readonly url: string
  readonly port: number
  /** Streams open now, idle or busy; for tests and diagnostics. */
  openStreamCount(): number
  /** Stops listening, lets in-flight requests finish (up to CLOSE_GRACE_MS), rolls back open transactions. */
  close(): Promise<void>
}

/**
 * Starts the server and resolves once it listens.
 *
 * @example
 * const server = await startLibsqlServer({ file: '.llorch/registry.db' })
 * const client = createClient({ url: server.url })
 * await server.close()
 */
export async function startLibsqlServer(options: LibsqlServerOptions): Promise<LibsqlServer> {
  const parsed = LibsqlServerOptions.safeParse(options)
  if (!parsed.success) throw new Error(`libsql-server options: ${describeIssues(parsed.error.issues)}`)
  const { port, host, authToken, streamIdleTimeoutMs, busyRetryLimitMs } = parsed.data
  // Whoever reaches the port can read and write every row, API key hashes included.
  if (authToken === undefined && !isLoopback(host))
    throw new Error(`libsql-server: binding ${host} needs an auth token; without one it binds only loopback (127.0.0.1, ::1)`)
  const log = options.log ?? silentLog
  const file = path.resolve(parsed.data.file)

  mkdirSync(path.dirname(file), { recursive: true })
  // Kept open while the server runs: WAL mode is set once, and the WAL is not checkpointed and
  // deleted each time the last stream's connection closes.
  const anchor = EngineConnection.open(file)
  let journalMode: string
  try {
    journalMode = anchor.enableWal()
  } catch (error) {
    anchor.close()
    throw error
  }
  // Without WAL, readers block the writer and the other way round: slower, still correct.
  if (journalMode !== 'wal') log('libsql.no_wal', { file, journalMode })

  const shutdown = new AbortController()
  const registry = new StreamRegistry({ file, idleTimeoutMs: streamIdleTimeoutMs, log })
  const handler = createHranaHandler({ registry, authToken, log, busyRetry: { limitMs: busyRetryLimitMs, signal: shutdown.signal } })
  const server = createServer(handler)
  try {
    await listen(server, port, host)
  } catch (error) {
    anchor.close()
    throw error
  }
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error(`libsql-server: expected a TCP address, got ${String(address)}`)
  const url = `http://${urlHost(host)}:${address.port}`

  let closing: Promise<void> | undefined
  return {
    url,
    port: address.port,
    openStreamCount: () => registry.openCount,
    close() {
      closing ??= (async () => {
        shutdown.abort()
        await stopServer(server)
        registry.closeAll()
        anchor.close()
      })()
      return closing
    },
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

async function stopServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS)
  await closed
  clearTimeout(grace)
}

/** Only this machine can connect: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** The host clients should dial: a wildcard bind is reached on loopback; IPv6 needs brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
