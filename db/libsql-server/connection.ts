import Database from 'libsql'
import type { HranaCol, HranaDescribeResult, HranaStmtResult } from './hrana-schema.ts'
import type { ScannedStatement } from './sql-scanner.ts'
import { encodeValue, type SqlValue } from './values.ts'

type Engine = Database.Database
type EngineStatement = ReturnType<Engine['prepare']>

export interface PreparedStatement {
  /** Runs the statement with its arguments bound by index (1-based, in order). */
  execute(args: readonly SqlValue[], wantRows: boolean): HranaStmtResult
}

/** Statements that change per-connection state, which must not carry over to another stream. */
const SESSION_STATE_WORDS = new Set(['PRAGMA', 'ATTACH', 'DETACH'])

/** Opcodes that make sqlite3_stmt_readonly() false besides a write `Transaction` (vdbeaux.c). */
const WRITING_OPCODES = new Set(['JournalMode', 'Vacuum', 'Checkpoint'])

/**
 * One SQLite connection of the `libsql` engine, serving one Hrana stream at a time. All methods
 * are synchronous and throw the engine's `SqliteError`; callers retry busy errors asynchronously.
 */
export class EngineConnection {
  readonly #db: Engine
  readonly #counters: EngineStatement
  readonly #totalChanges: EngineStatement
  readonly #anyTempObject: EngineStatement
  #reusable = true
  #sessionStateChanged = false

  private constructor(db: Engine) {
    this.#db = db
    this.#counters = db.prepare('SELECT changes(), total_changes(), last_insert_rowid()').raw(true)
    this.#totalChanges = db.prepare('SELECT total_changes()').raw(true)
    this.#anyTempObject = db.prepare('SELECT 1 FROM temp.sqlite_master LIMIT 1').raw(true)
  }

  /**
   * Opens `file` with busy_timeout 0 (see busy-retry.ts), foreign keys enforced, and
   * synchronous=NORMAL, which in WAL mode is safe against corruption and loses at most the last
   * commits on power loss, not on a crash of this process.
   */
  static open(file: string): EngineConnection {
    const db = new Database(file)
    try {
      db.defaultSafeIntegers(true)
      db.exec('PRAGMA busy_timeout = 0; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL')
      return new EngineConnection(db)
    } catch (error) {
      db.close()
      throw error
    }
  }

  /** Switches the database file to WAL (persistent) and returns the journal mode now in force. */
  enableWal(): string {
    const row = this.#db.prepare('PRAGMA journal_mode = WAL').raw(true).get([])
    return Array.isArray(row) ? String(row[0]) : 'unknown'
  }

  get isAutocommit(): boolean {
    return !this.#db.inTransaction
  }

  /**
   * False once a statement failed with SQLITE_BUSY and was given up on. The engine has no reset,
   * so that statement stays active inside SQLite until garbage collection finalizes it, and while
   * it is active no later write on this connection would autocommit. The stream then replaces the
   * connection as soon as it is outside a transaction.
   */
  get reusable(): boolean {
    return this.#reusable
  }

  abandonAfterBusy(): void {
    this.#reusable = false
  }

  /**
   * Prepares one statement. Retry its execute() on SQLITE_BUSY rather than preparing it again:
   * execute() resets the statement first, which is the only way to end the busy attempt.
   */
  prepare(statement: ScannedStatement): PreparedStatement {
    const stmt = this.#db.prepare(statement.sql)
    if (SESSION_STATE_WORDS.has(statement.firstWord)) this.#sessionStateChanged = true
    const cols = stmt.reader ? columnsOf(stmt) : []
    return {
      execute: (args, wantRows) => {
        const before = readBigints(this.#totalChanges.get([]))[0]
        let rows: unknown[] = []
        if (stmt.reader) rows = stmt.raw(true).all([...args])
        else stmt.run([...args])
        const [changes, total, lastInsertRowid] = readBigints(this.#counters.get([]))
        // changes() and last_insert_rowid() keep the values of the connection's last write, maybe
        // another stream's (connections are pooled); they are this statement's only when the
        // running total moved.
        const wrote = total !== before
        return {
          cols,
          rows: wantRows ? rows.map(encodeRow) : [],
          affected_row_count: wrote ? Number(changes) : 0,
          last_insert_rowid: wrote && lastInsertRowid !== undefined ? lastInsertRowid.toString() : null,
        }
      },
    }
  }

  /** Runs a statement without arguments, discarding rows (a `sequence` step). */
  run(statement: ScannedStatement): void {
    if (SESSION_STATE_WORDS.has(statement.firstWord)) this.#sessionStateChanged = true
    this.#db.exec(statement.sql)
  }

  describe(statement: ScannedStatement): HranaDescribeResult {
    const stmt = this.#db.prepare(statement.sql)
    return {
      params: statement.params.map((name) => ({ name })),
      cols: stmt.reader ? columnsOf(stmt) : [],
      is_explain: statement.isExplain,
      is_readonly: statement.isExplain || this.#isReadonly(statement.sql),
    }
  }

  /** sqlite3_stmt_readonly() is not exposed, so read the program: a writer opens a write transaction. */
  #isReadonly(sql: string): boolean {
    const program = this.#db.prepare(`EXPLAIN ${sql}`).raw(true).all([])
    return program.every((op) => {
      if (!Array.isArray(op)) return true
      const [, opcode, , p2] = op
      if (opcode === 'Transaction') return p2 === 0n || p2 === 0
      return typeof opcode !== 'string' || !WRITING_OPCODES.has(opcode)
    })
  }

  /**
   * Readies the connection for another stream: rolls back an open transaction and tells whether
   * nothing of the last stream's session is left (no pragma or attach, no temp objects).
   */
  resetForNextStream(): boolean {
    if (!this.#reusable || this.#sessionStateChanged) return false
    if (this.#db.inTransaction) this.#db.exec('ROLLBACK')
    return this.#anyTempObject.get([]) === undefined
  }

  /** Rolls back an open transaction, as closing a SQLite connection would, then closes. */
  close(): void {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK')
    } finally {
      this.#db.close()
    }
  }
}

function columnsOf(stmt: EngineStatement): HranaCol[] {
  return stmt.columns().map((col) => ({ name: col.name, decltype: col.type }))
}

function encodeRow(row: unknown) {
  if (!Array.isArray(row)) throw new TypeError('The engine returned a row that is not an array in raw mode')
  return row.map(encodeValue)
}

function readBigints(row: unknown): (bigint | undefined)[] {
  if (!Array.isArray(row)) return []
  return row.map((v) => (typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : undefined))
}
