import { isBusyError, retryWhileBusy, type BusyRetryOptions } from './busy-retry.ts'
import { hranaError, toHranaError } from './errors.ts'
import type { HranaError, HranaStmt, HranaStmtResult } from './hrana-schema.ts'
import { scanStatements, type ScannedStatement } from './sql-scanner.ts'
import { bindArgs } from './stmt-args.ts'
import type { Stream } from './streams.ts'

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: HranaError }

/** The text behind `sql` or `sql_id` (the schema guarantees exactly one is set). */
export function resolveSql(stream: Stream, source: { sql?: string | null | undefined; sql_id?: number | null | undefined }): Outcome<string> {
  if (typeof source.sql === 'string') return { ok: true, value: source.sql }
  const stored = source.sql_id === null || source.sql_id === undefined ? undefined : stream.sqls.get(source.sql_id)
  if (stored === undefined)
    return { ok: false, error: hranaError('SQL_NOT_FOUND', `No SQL text is stored under sql_id ${String(source.sql_id)} on this stream`) }
  return { ok: true, value: stored }
}

/** The one statement in `sql`; Hrana's execute, batch steps and describe refuse zero or several. */
export function singleStatement(sql: string): Outcome<ScannedStatement> {
  const statements = scanStatements(sql)
  const [first] = statements
  if (first === undefined) return { ok: false, error: hranaError('SQL_NO_STATEMENT', 'SQL string does not contain any statement') }
  if (statements.length > 1) return { ok: false, error: hranaError('SQL_MANY_STATEMENTS', 'SQL string contains more than one statement') }
  return { ok: true, value: first }
}

/** Executes one Hrana statement on the stream's connection; failures come back as values. */
export async function executeStmt(stream: Stream, stmt: HranaStmt, options: BusyRetryOptions): Promise<Outcome<HranaStmtResult>> {
  const sql = resolveSql(stream, stmt)
  if (!sql.ok) return sql
  const statement = singleStatement(sql.value)
  if (!statement.ok) return statement
  const args = bindArgs(statement.value.params, stmt)
  if (!args.ok) return args
  const connection = stream.connection()
  // On a connection kept for its open transaction after a busy give-up, COMMIT can only fail
  // ("SQL statements in progress"), so do not wait for it.
  const retry = connection.reusable ? options : { ...options, limitMs: 0 }
  try {
    const prepared = await retryWhileBusy(() => connection.prepare(statement.value), retry)
    const wantRows = stmt.want_rows ?? true
    const value = await retryWhileBusy(() => prepared.execute(args.values, wantRows), retry)
    return { ok: true, value }
  } catch (error) {
    if (isBusyError(error)) connection.abandonAfterBusy()
    return { ok: false, error: toHranaError(error) }
  }
}
