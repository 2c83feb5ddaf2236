import { z } from 'zod'
import type { HistogramSnapshot } from '../../protocol/index.ts'
import { sqlRow, sqlRows } from './sql-rows.ts'

const CounterRow = z.object({ label: z.string(), value: z.number() })
const BucketRow = z.object({ le: z.number().nullable(), n: z.number() })
const TotalsRow = z.object({ sum: z.number(), n: z.number() })

/**
 * Counters and histograms in a Durable Object's SQLite, so they survive eviction and restarts.
 * A counter has at most one label (`''` for none): the reason, the outcome. A histogram keeps
 * one row per bucket upper bound it has seen (`le` null for `+Inf`), its sum and its count.
 */
export class MetricStore {
  readonly #sql: SqlStorage

  constructor(sql: SqlStorage) {
    this.#sql = sql
    sql.exec('CREATE TABLE IF NOT EXISTS metric_counters (name TEXT NOT NULL, label TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, label))')
    sql.exec('CREATE TABLE IF NOT EXISTS metric_buckets (name TEXT NOT NULL, le REAL, n INTEGER NOT NULL, UNIQUE (name, le))')
    sql.exec('CREATE TABLE IF NOT EXISTS metric_histograms (name TEXT PRIMARY KEY, sum REAL NOT NULL, n INTEGER NOT NULL)')
  }

  count(name: string, label = '', by = 1): void {
    if (by === 0) return
    this.#sql.exec(
      'INSERT INTO metric_counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value',
      name,
      label,
      by,
    )
  }

  /** The counter's value for each label it was counted under. */
  counters(name: string): Record<string, number> {
    const rows = sqlRows(this.#sql, CounterRow, 'SELECT label, value FROM metric_counters WHERE name = ?', name)
    return Object.fromEntries(rows.map((r) => [r.label, r.value]))
  }

  counter(name: string): number {
    return this.counters(name)[''] ?? 0
  }

  observe(name: string, bounds: readonly number[], value: number): void {
    if (!Number.isFinite(value)) return
    const le = bounds.find((bound) => value <= bound) ?? null
    // `UNIQUE (name, le)` does not catch two NULLs, so the +Inf bucket is updated by hand.
    const updated = this.#sql.exec('UPDATE metric_buckets SET n = n + 1 WHERE name = ? AND le IS ?', name, le).rowsWritten
    if (updated === 0) this.#sql.exec('INSERT INTO metric_buckets (name, le, n) VALUES (?, ?, 1)', name, le)
    this.#sql.exec(
      'INSERT INTO metric_histograms (name, sum, n) VALUES (?, ?, 1) ON CONFLICT (name) DO UPDATE SET sum = sum + excluded.sum, n = n + 1',
      name,
      value,
    )
  }

  histogram(name: string, bounds: readonly number[]): HistogramSnapshot {
    const buckets = sqlRows(this.#sql, BucketRow, 'SELECT le, n FROM metric_buckets WHERE name = ?', name)
    const totals = sqlRow(this.#sql, TotalsRow, 'SELECT sum, n FROM metric_histograms WHERE name = ?', name) ?? { sum: 0, n: 0 }
    const cumulative = bounds.map((bound) => buckets.reduce((n, b) => (b.le !== null && b.le <= bound ? n + b.n : n), 0))
    cumulative.push(totals.n)
    return { bounds: [...bounds], cumulative, sum: totals.sum, count: totals.n }
  }
}
