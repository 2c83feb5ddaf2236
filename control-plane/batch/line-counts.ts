import { z } from 'zod'
import { BatchLineOutcome, NO_BATCH_LINES } from '../../protocol/index.ts'
import type { BatchLineCounts } from '../../protocol/index.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRows } from '../storage/sql-rows.ts'

const Row = z.object({ outcome: BatchLineOutcome, n: z.int() })

/** The fleet's batch lines by outcome, added to by each batch as its lines end (`/metrics`). */
export class LineCounts {
  readonly #sql: SqlExec

  constructor(sql: SqlExec) {
    this.#sql = sql
    sql.exec('CREATE TABLE IF NOT EXISTS line_counts (outcome TEXT PRIMARY KEY, n INTEGER NOT NULL)')
  }

  add(delta: BatchLineCounts): void {
    for (const outcome of BatchLineOutcome.options) {
      if (delta[outcome] === 0) continue
      this.#sql.exec('INSERT INTO line_counts (outcome, n) VALUES (?, ?) ON CONFLICT (outcome) DO UPDATE SET n = n + excluded.n', outcome, delta[outcome])
    }
  }

  read(): BatchLineCounts {
    const counts = { ...NO_BATCH_LINES }
    for (const row of sqlRows(this.#sql, Row, 'SELECT outcome, n FROM line_counts')) counts[row.outcome] = row.n
    return counts
  }
}
