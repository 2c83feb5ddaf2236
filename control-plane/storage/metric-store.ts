import { z } from 'zod'
import type { HistogramSnapshot } from '../../protocol/index.ts'
import { countedSql } from './counted-sql.ts'
import type { SqlExec } from './counted-sql.ts'
import { sqlRow, sqlRows } from './sql-rows.ts'

const CounterRow = z.object({ label: z.string(), value: z.number() })
const BucketRow = z.object({ le: z.number().nullable(), n: z.number() })
const TotalsRow = z.object({ sum: z.number(), n: z.number() })

/** Metric changes are written to storage this long after the first unwritten one, in one go. */
export const METRICS_FLUSH_INTERVAL_MS = 1_000

/**
 * Counters and histograms in a Durable Object's SQLite, so they survive eviction and restarts.
 * A counter has at most one label (`''` for none): the reason, the outcome. A histogram keeps
 * one row per bucket upper bound it has seen (`le` null for `+Inf`), its sum and its count.
 *
 * Changes gather in memory and are written by `flush()` (the object's alarm, within
 * `METRICS_FLUSH_INTERVAL_MS`), so a busy pool pays a few writes a second for its metrics, not
 * several per task. Reads flush first. What an object loses in a crash is at most that second.
 */
export class MetricStore {
  readonly #sql: SqlExec
  readonly #counters = new Map<string, { name: string; label: string; by: number }>()
  readonly #buckets = new Map<string, { name: string; le: number | null; n: number }>()
  readonly #totals = new Map<string, { sum: number; n: number }>()
  #pendingSince: number | null = null

  constructor(storage: SqlStorage) {
    const sql = countedSql(storage)
    this.#sql = sql
    sql.exec('CREATE TABLE IF NOT EXISTS metric_counters (name TEXT NOT NULL, label TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, label))')
    sql.exec('CREATE TABLE IF NOT EXISTS metric_buckets (name TEXT NOT NULL, le REAL, n INTEGER NOT NULL, UNIQUE (name, le))')
    sql.exec('CREATE TABLE IF NOT EXISTS metric_histograms (name TEXT PRIMARY KEY, sum REAL NOT NULL, n INTEGER NOT NULL)')
  }

  /** When the unwritten changes must be written, or null when there are none. */
  get flushDueAt(): number | null {
    return this.#pendingSince === null ? null : this.#pendingSince + METRICS_FLUSH_INTERVAL_MS
  }

  count(name: string, label = '', by = 1): void {
    if (by === 0) return
    const key = `${name}\u0000${label}`
    const pending = this.#counters.get(key)
    if (pending) pending.by += by
    else this.#counters.set(key, { name, label, by })
    this.#pendingSince ??= Date.now()
  }

  /** The counter's value for each label it was counted under. */
  counters(name: string): Record<string, number> {
    this.flush()
    const rows = sqlRows(this.#sql, CounterRow, 'SELECT label, value FROM metric_counters WHERE name = ?', name)
    return Object.fromEntries(rows.map((r) => [r.label, r.value]))
  }

  counter(name: string): number {
    return this.counters(name)[''] ?? 0
  }

  observe(name: string, bounds: readonly number[], value: number): void {
    if (!Number.isFinite(value)) return
    const le = bounds.find((bound) => value <= bound) ?? null
    const key = `${name}\u0000${le ?? '+Inf'}`
    const bucket = this.#buckets.get(key)
    if (bucket) bucket.n += 1
    else this.#buckets.set(key, { name, le, n: 1 })
    const totals = this.#totals.get(name)
    if (totals) {
      totals.sum += value
      totals.n += 1
    } else {
      this.#totals.set(name, { sum: value, n: 1 })
    }
    this.#pendingSince ??= Date.now()
  }

  histogram(name: string, bounds: readonly number[]): HistogramSnapshot {
    this.flush()
    const buckets = sqlRows(this.#sql, BucketRow, 'SELECT le, n FROM metric_buckets WHERE name = ?', name)
    const totals = sqlRow(this.#sql, TotalsRow, 'SELECT sum, n FROM metric_histograms WHERE name = ?', name) ?? { sum: 0, n: 0 }
    const cumulative = bounds.map((bound) => buckets.reduce((n, b) => (b.le !== null && b.le <= bound ? n + b.n : n), 0))
    cumulative.push(totals.n)
    return { bounds: [...bounds], cumulative, sum: totals.sum, count: totals.n }
  }

  /** Writes what gathered in memory. */
  flush(): void {
    if (this.#pendingSince === null) return
    for (const { name, label, by } of this.#counters.values()) {
      this.#sql.exec(
        'INSERT INTO metric_counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value',
        name,
        label,
        by,
      )
    }
    for (const { name, le, n } of this.#buckets.values()) {
      // `UNIQUE (name, le)` does not catch two NULLs, so the +Inf bucket is updated by hand.
      const updated = this.#sql.exec('UPDATE metric_buckets SET n = n + ? WHERE name = ? AND le IS ?', n, name, le).rowsWritten
      if (updated === 0) this.#sql.exec('INSERT INTO metric_buckets (name, le, n) VALUES (?, ?, ?)', name, le, n)
    }
    for (const [name, { sum, n }] of this.#totals) {
      this.#sql.exec(
        'INSERT INTO metric_histograms (name, sum, n) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET sum = sum + excluded.sum, n = n + excluded.n',
        name,
        sum,
        n,
      )
    }
    this.#counters.clear()
    this.#buckets.clear()
    this.#totals.clear()
    this.#pendingSince = null
  }
}
