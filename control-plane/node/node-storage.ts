import { z } from 'zod'
import { EngineKind, ReplicaReport, ReplicaState } from '../../protocol/index.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'

const MetaRow = z.object({ value: z.string() })
const ReplicaStorageRow = z.object({
  pool: z.string(),
  engine: EngineKind,
  state: ReplicaState,
  slots: z.number(),
  slots_busy: z.number(),
  engine_version: z.string().nullable(),
  reason: z.string().nullable(),
})

type MetaKey = 'node_id' | 'connection_id' | 'last_heartbeat_at' | 'last_seen_written_at' | 'revoked' | 'online'

/**
 * What a NodeObject must remember across eviction: who it is, which socket is current, when the
 * agent was last heard from, and the replicas it last reported.
 */
export class NodeStorage {
  readonly #sql: SqlStorage

  constructor(sql: SqlStorage) {
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
    sql.exec(`CREATE TABLE IF NOT EXISTS replicas (
      pool TEXT PRIMARY KEY, engine TEXT NOT NULL, state TEXT NOT NULL, slots INTEGER NOT NULL,
      slots_busy INTEGER NOT NULL, engine_version TEXT, reason TEXT)`)
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

  delete(key: MetaKey): void {
    this.#sql.exec('DELETE FROM meta WHERE key = ?', key)
  }

  replicas(): ReplicaReport[] {
    return sqlRows(this.#sql, ReplicaStorageRow, 'SELECT * FROM replicas ORDER BY pool')
  }

  putReplica(report: ReplicaReport): void {
    this.#sql.exec(
      `INSERT INTO replicas (pool, engine, state, slots, slots_busy, engine_version, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (pool) DO UPDATE SET engine = excluded.engine, state = excluded.state, slots = excluded.slots,
       slots_busy = excluded.slots_busy, engine_version = excluded.engine_version, reason = excluded.reason`,
      report.pool,
      report.engine,
      report.state,
      report.slots,
      report.slots_busy,
      report.engine_version ?? null,
      report.reason ?? null,
    )
  }

  clearReplicas(): void {
    this.#sql.exec('DELETE FROM replicas')
  }
}
