import { z } from 'zod'
import type { BatchOutputLine } from '../../protocol/index.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'
import type { ValidLine } from './line-validation.ts'
import { LineState, moveLine } from './line-states.ts'

export const StoredLine = z.object({
  line: z.int().positive(),
  custom_id: z.string(),
  /** The request body as validated, JSON. */
  body: z.string(),
  state: LineState,
  attempts: z.int().nonnegative(),
})
export type StoredLine = z.infer<typeof StoredLine>

const Output = z.object({ line: z.int(), ok: z.int(), json: z.string() })
const Count = z.object({ n: z.int() })
const NotBefore = z.object({ not_before: z.number().nullable() })

/** Output lines are read out for the files in pages of this many. */
const OUTPUT_PAGE_LINES = 500

/**
 * A batch's lines and the output of each, in its object's SQLite storage: one row per line
 * (its request as validated) and one per finished line (its output or error line).
 */
export class LineStore {
  readonly #sql: SqlExec

  constructor(sql: SqlExec) {
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS lines (
      line INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, body TEXT NOT NULL,
      state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0)`)
    sql.exec('CREATE INDEX IF NOT EXISTS lines_pending ON lines (state, not_before, line)')
    sql.exec('CREATE TABLE IF NOT EXISTS outputs (line INTEGER PRIMARY KEY, ok INTEGER NOT NULL, json TEXT NOT NULL)')
  }

  insert(valid: ValidLine): void {
    this.#sql.exec(
      'INSERT INTO lines (line, custom_id, body, state) VALUES (?, ?, ?, ?)',
      valid.line,
      valid.customId,
      JSON.stringify(valid.generation.body),
      'pending',
    )
  }

  clear(): void {
    this.#sql.exec('DELETE FROM lines')
    this.#sql.exec('DELETE FROM outputs')
  }

  /** The next line due to run, skipping those already running here. */
  nextDue(now: number): StoredLine | undefined {
    return sqlRow(this.#sql, StoredLine, "SELECT * FROM lines WHERE state = 'pending' AND not_before <= ? ORDER BY line LIMIT 1", now)
  }

  /** When the earliest pending line may run; null when none waits. */
  nextDueAt(): number | null {
    return sqlRow(this.#sql, NotBefore, "SELECT MIN(not_before) AS not_before FROM lines WHERE state = 'pending'")?.not_before ?? null
  }

  unfinished(): number {
    return sqlRow(this.#sql, Count, "SELECT COUNT(*) AS n FROM lines WHERE state != 'done'")?.n ?? 0
  }

  /** pending → running: one more attempt. */
  start(line: StoredLine): number {
    this.#move(line, 'running')
    const attempts = line.attempts + 1
    this.#sql.exec("UPDATE lines SET state = 'running', attempts = ? WHERE line = ?", attempts, line.line)
    return attempts
  }

  /** running → done with its output or error line, in one write; false when the line was not running that attempt (it ended already). */
  finish(line: number, attempt: number, { ok, output }: { ok: boolean; output: BatchOutputLine }): boolean {
    const row = this.#running(line, attempt)
    if (!row) return false
    this.#move(row, 'done')
    this.#sql.exec("UPDATE lines SET state = 'done' WHERE line = ?", line)
    this.#sql.exec('INSERT INTO outputs (line, ok, json) VALUES (?, ?, ?)', line, ok ? 1 : 0, JSON.stringify(output))
    return true
  }

  /** running → pending, to run again after `notBefore`; `refund`: the run did not count as an attempt. */
  retry(line: number, attempt: number, { notBefore, refund }: { notBefore: number; refund: boolean }): void {
    const row = this.#running(line, attempt)
    if (!row) return
    this.#move(row, 'pending')
    this.#sql.exec("UPDATE lines SET state = 'pending', not_before = ?, attempts = ? WHERE line = ?", notBefore, refund ? attempt - 1 : attempt, line)
  }

  /** After a restart nothing runs: lines left running go back to pending, the interrupted run not counted. */
  recover(): number {
    return this.#sql.exec("UPDATE lines SET state = 'pending', attempts = MAX(attempts - 1, 0), not_before = 0 WHERE state = 'running'").rowsWritten
  }

  /** Lines never finished, in order (for the error file of a stopped batch). */
  *unfinishedLines(): Generator<StoredLine> {
    for (let after = 0; ;) {
      const page = sqlRows(this.#sql, StoredLine, "SELECT * FROM lines WHERE state != 'done' AND line > ? ORDER BY line LIMIT ?", after, OUTPUT_PAGE_LINES)
      yield* page
      const last = page.at(-1)
      if (!last) return
      after = last.line
    }
  }

  /** The stored output (`ok`) or error lines as JSON text, in line order. */
  *outputs(ok: boolean): Generator<string> {
    for (let after = 0; ;) {
      const page = sqlRows(this.#sql, Output, 'SELECT * FROM outputs WHERE ok = ? AND line > ? ORDER BY line LIMIT ?', ok ? 1 : 0, after, OUTPUT_PAGE_LINES)
      for (const row of page) yield row.json
      const last = page.at(-1)
      if (!last) return
      after = last.line
    }
  }

  /** The line, if it is running this attempt: a late answer of an older attempt changes nothing. */
  #running(line: number, attempt: number): StoredLine | undefined {
    const row = sqlRow(this.#sql, StoredLine, 'SELECT * FROM lines WHERE line = ?', line)
    return row?.state === 'running' && row.attempts === attempt ? row : undefined
  }

  #move(line: StoredLine, to: LineState): void {
    moveLine(line.line, line.state, to)
  }
}
