import { z } from 'zod'
import { ReplicaReport } from '../../protocol/index.ts'
import { countedSql } from '../storage/counted-sql.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'

const MetaRow = z.object({ value: z.string() })
const ReportRow = z.object({ report: z.string() })

type MetaKey = 'connection_id' | 'last_heartbeat_at' | 'last_seen_written_at' | 'revoked' | 'online' | 'registry_stale'

/**
 * What a NodeObject must remember across eviction: which socket is current, when the
 * agent was last heard from, and the replicas it last reported.
 */
export class NodeStorage {
  readonly #sql: SqlExec

  constructor(storage: SqlStorage) {
    const sql = countedSql(storage)
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
    // The last report per pool, as the agent sent it; rebuilt by every hello.
    sql.exec('DROP TABLE IF EXISTS replicas')
    sql.exec('CREATE TABLE IF NOT EXISTS replica_reports (pool TEXT PRIMARY KEY, report TEXT NOT NULL)')
  }

  get(key: MetaKey): string | undefined {
    return sqlRow(this.#sql, MetaRow, 'SELECT value FROM meta WHERE key = ?', key)?.value
  }

  getNumber(key: MetaKey): number | undefined {
    const value = this.get(key)
    return value === undefined ? undefined : Number(value)
  }

  set(key: MetaKey, value: string | number): void {
    this.#sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, String(value))
  }

  replicas(): ReplicaReport[] {
    return sqlRows(this.#sql, ReportRow, 'SELECT report FROM replica_reports ORDER BY pool').map((row) => ReplicaReport.parse(JSON.parse(row.report)))
  }

  putReplica(report: ReplicaReport): void {
    this.#sql.exec(
      'INSERT INTO replica_reports (pool, report) VALUES (?, ?) ON CONFLICT (pool) DO UPDATE SET report = excluded.report',
      report.pool,
      JSON.stringify(report),
    )
  }

  clearReplicas(): void {
    this.#sql.exec('DELETE FROM replica_reports')
  }
}
