import { randomBytes } from 'node:crypto'
import type { EngineConnection } from './connection.ts'
import { ConnectionPool } from './connection-pool.ts'
import type { HttpErrorCode } from './errors.ts'
import type { Log } from './log.ts'

/** sqld's value: a stream nobody used for this long is closed, rolling back its transaction. */
export const STREAM_IDLE_TIMEOUT_MS = 10_000
/** Each open stream may hold a SQLite connection (three file descriptors); past this many, new streams are refused. */
export const MAX_OPEN_STREAMS = 256
/** How long an expired baton still earns STREAM_EXPIRED rather than BATON_INVALID. */
export const EXPIRED_BATON_MEMORY_MS = 5 * 60_000
const MAX_REMEMBERED_EXPIRED_BATONS = 10_000
const BATON_BYTES = 32

/** A Hrana stream: one connection (taken on first use) and the SQL texts stored on it. */
export class Stream {
  readonly id: number
  readonly sqls = new Map<number, string>()
  readonly #pool: ConnectionPool
  #connection: EngineConnection | undefined
  #closed = false

  constructor(id: number, pool: ConnectionPool) {
    this.id = id
    this.#pool = pool
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * The stream's connection, taken on first use, and replaced when the old one may not be
   * reused (see EngineConnection.reusable) and holds no transaction that would be lost.
   */
  connection(): EngineConnection {
    // Only a server shutdown closes a stream under a running request; its connection may be
    // back in the pool by now.
    if (this.#closed) throw new Error(`Stream ${this.id} is closed`)
    if (this.#connection && !this.#connection.reusable && this.#connection.isAutocommit) {
      this.#connection.close()
      this.#connection = undefined
    }
    this.#connection ??= this.#pool.acquire()
    return this.#connection
  }

  get inTransaction(): boolean {
    return this.#connection !== undefined && !this.#connection.isAutocommit
  }

  /** Ends the stream; its connection goes back to the pool, its transaction rolled back. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.sqls.clear()
    if (this.#connection) this.#pool.release(this.#connection)
  }
}

export type AcquireResult = { ok: true; stream: Stream } | { ok: false; code: HttpErrorCode; message: string }

interface AvailableStream {
  readonly stream: Stream
  readonly timer: NodeJS.Timeout
}

export interface StreamRegistryOptions {
  file: string
  idleTimeoutMs?: number
  log: Log
}

/**
 * Streams by baton. A baton is 32 random bytes mapped to its stream on this server, valid for one
 * request: acquiring a stream takes its baton out of the map, and releasing it mints a new one.
 * So a baton cannot be forged, replayed, or used by two requests at once.
 */
export class StreamRegistry {
  readonly #pool: ConnectionPool
  readonly #idleTimeoutMs: number
  readonly #log: Log
  readonly #available = new Map<string, AvailableStream>()
  readonly #live = new Set<Stream>()
  readonly #expired = new Map<string, number>()
  #nextId = 1

  constructor(options: StreamRegistryOptions) {
    this.#pool = new ConnectionPool(options.file)
    this.#idleTimeoutMs = options.idleTimeoutMs ?? STREAM_IDLE_TIMEOUT_MS
    this.#log = options.log
  }

  /** Streams that are open, idle or serving a request. */
  get openCount(): number {
    return this.#live.size
  }

  /** A new stream without a baton, else the stream the baton was issued for. */
  acquire(baton: string | null | undefined): AcquireResult {
    if (baton === null || baton === undefined) {
      if (this.#live.size >= MAX_OPEN_STREAMS) {
        return { ok: false, code: 'TOO_MANY_STREAMS', message: `The server already has ${MAX_OPEN_STREAMS} open streams, it cannot open more` }
      }
      const stream = new Stream(this.#nextId++, this.#pool)
      this.#live.add(stream)
      return { ok: true, stream }
    }
    const entry = this.#available.get(baton)
    if (entry === undefined) {
      if (this.#expired.has(baton)) {
        return { ok: false, code: 'STREAM_EXPIRED', message: 'The stream has expired due to inactivity' }
      }
      return { ok: false, code: 'BATON_INVALID', message: 'The baton is not valid: it was never issued, was already used, or its stream is closed' }
    }
    this.#available.delete(baton)
    clearTimeout(entry.timer)
    return { ok: true, stream: entry.stream }
  }

  /** Ends a request on `stream`: a new baton for it, or null when it closed. */
  release(stream: Stream): string | null {
    if (stream.closed) {
      this.#live.delete(stream)
      return null
    }
    const baton = randomBytes(BATON_BYTES).toString('base64url')
    const timer = setTimeout(() => this.#expire(baton), this.#idleTimeoutMs)
    timer.unref()
    this.#available.set(baton, { stream, timer })
    return baton
  }

  #expire(baton: string): void {
    const entry = this.#available.get(baton)
    if (entry === undefined) return
    this.#available.delete(baton)
    this.#log('libsql.stream_expired', { stream: entry.stream.id, inTransaction: entry.stream.inTransaction })
    this.discard(entry.stream)
    this.#rememberExpired(baton)
  }

  #rememberExpired(baton: string): void {
    const now = Date.now()
    for (const [old, at] of this.#expired) {
      if (now - at < EXPIRED_BATON_MEMORY_MS && this.#expired.size < MAX_REMEMBERED_EXPIRED_BATONS) break
      this.#expired.delete(old)
    }
    this.#expired.set(baton, now)
  }

  /** Closes a stream outside the protocol's flow, e.g. after an internal error. */
  discard(stream: Stream): void {
    this.#live.delete(stream)
    try {
      stream.close()
    } catch (error) {
      this.#log('libsql.stream_close_failed', { stream: stream.id, error: String(error) })
    }
  }

  /** Closes every stream, rolling back open transactions. */
  closeAll(): void {
    for (const { timer } of this.#available.values()) clearTimeout(timer)
    this.#available.clear()
    for (const stream of [...this.#live]) this.discard(stream)
    this.#expired.clear()
    this.#pool.closeAll()
  }
}
