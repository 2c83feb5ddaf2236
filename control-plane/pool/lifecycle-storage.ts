import { z } from 'zod'
import { ReplicaState } from '../../protocol/index.ts'
import { countedSql } from '../storage/counted-sql.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'
import type { RollingReload } from './rolling-reload.ts'

const ActivityRow = z.object({
  node_id: z.string(),
  state: ReplicaState,
  active_at: z.number(),
  sent_command: z.enum(['preload', 'drain']).nullable(),
  sent_at: z.number().nullable(),
})
export type ActivityRow = z.infer<typeof ActivityRow>

const RollingReloadJson = z.object({
  order: z.array(z.string()),
  index: z.int(),
  phase: z.enum(['stopping', 'starting']),
  stepStartedAt: z.number(),
  deadlineMs: z.int().optional(),
})
const StateRow = z.object({ maintenance_since: z.number().nullable(), rolling_reload: z.string().nullable() })
const NodeIdRow = z.object({ node_id: z.string() })

/**
 * What the pool's lifecycle must remember across restarts of its Durable Object: the
 * maintenance drain, the cordoned nodes, a rolling reload under way, and per replica when it last
 * became ready and what it was last told. Its own tables beside the queue's.
 */
export class LifecycleStorage {
  readonly #sql: SqlExec

  constructor(storage: SqlStorage) {
    const sql = countedSql(storage)
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS lifecycle_state (id INTEGER PRIMARY KEY CHECK (id = 1), maintenance_since INTEGER, rolling_reload TEXT)`)
    sql.exec('CREATE TABLE IF NOT EXISTS lifecycle_cordons (node_id TEXT PRIMARY KEY, since INTEGER NOT NULL)')
    sql.exec(`CREATE TABLE IF NOT EXISTS lifecycle_activity (
      node_id TEXT PRIMARY KEY, state TEXT NOT NULL, active_at INTEGER NOT NULL, sent_command TEXT, sent_at INTEGER)`)
  }

  maintenanceSince(): number | null {
    return this.#state()?.maintenance_since ?? null
  }

  setMaintenance(since: number | null): void {
    this.#sql.exec(
      'INSERT INTO lifecycle_state (id, maintenance_since) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET maintenance_since = excluded.maintenance_since',
      since,
    )
  }

  rollingReload(): RollingReload | null {
    const json = this.#state()?.rolling_reload
    return json ? RollingReloadJson.parse(JSON.parse(json)) : null
  }

  setRollingReload(rollout: RollingReload | null): void {
    this.#sql.exec(
      'INSERT INTO lifecycle_state (id, rolling_reload) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET rolling_reload = excluded.rolling_reload',
      rollout ? JSON.stringify(rollout) : null,
    )
  }

  cordoned(): Set<string> {
    return new Set(sqlRows(this.#sql, NodeIdRow, 'SELECT node_id FROM lifecycle_cordons').map((r) => r.node_id))
  }

  setCordon(nodeId: string, since: number | null): void {
    if (since === null) this.#sql.exec('DELETE FROM lifecycle_cordons WHERE node_id = ?', nodeId)
    else this.#sql.exec('INSERT INTO lifecycle_cordons (node_id, since) VALUES (?, ?) ON CONFLICT (node_id) DO NOTHING', nodeId, since)
  }

  activity(): ActivityRow[] {
    return sqlRows(this.#sql, ActivityRow, 'SELECT node_id, state, active_at, sent_command, sent_at FROM lifecycle_activity')
  }

  putActivity(row: ActivityRow): void {
    this.#sql.exec(
      `INSERT INTO lifecycle_activity (node_id, state, active_at, sent_command, sent_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET state = excluded.state, active_at = excluded.active_at, sent_command = excluded.sent_command, sent_at = excluded.sent_at`,
      row.node_id,
      row.state,
      row.active_at,
      row.sent_command,
      row.sent_at,
    )
  }

  #state() {
    return sqlRow(this.#sql, StateRow, 'SELECT maintenance_since, rolling_reload FROM lifecycle_state WHERE id = 1')
  }
}
