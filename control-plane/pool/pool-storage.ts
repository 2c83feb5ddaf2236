import { z } from 'zod'
import type { Priority, ReplicaReport } from '../../protocol/index.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'
import type { PlacementCandidate } from './placement.ts'
import { PRIORITY_RANK, QUEUE_ORDER_SQL } from './queue-order.ts'

export type TaskState = 'queued' | 'granted' | 'running'

/** The columns `TaskRow` reads, in every task query. */
const TASK_COLUMNS = 'task_id, state, node_id, wait_deadline_at, granted_at, started_at'

const TaskRow = z.object({
  task_id: z.string(),
  state: z.enum(['queued', 'granted', 'running']),
  node_id: z.string().nullable(),
  wait_deadline_at: z.number(),
  granted_at: z.number().nullable(),
  started_at: z.number().nullable(),
})
export type TaskRow = z.infer<typeof TaskRow>

const ReplicaRow = z.object({
  node_id: z.string(),
  state: z.string(),
  slots: z.number(),
  busy: z.number(),
  recent_failures: z.number(),
  last_granted_at: z.number(),
})
const Count = z.object({ n: z.number() })
const Deadline = z.object({ at: z.number().nullable() })
const MetaValue = z.object({ value: z.number() })

/**
 * A pool's queue and replica table in Durable Object SQLite, so a restart loses no queued task.
 * Busy slots are never stored as a counter: they are the tasks granted or running on a replica.
 */
export class PoolStorage {
  readonly #sql: SqlStorage

  constructor(sql: SqlStorage) {
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS replicas (
      node_id TEXT PRIMARY KEY, state TEXT NOT NULL, slots INTEGER NOT NULL, engine TEXT NOT NULL,
      recent_failures INTEGER NOT NULL DEFAULT 0, last_granted_at INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL)`)
    sql.exec(`CREATE TABLE IF NOT EXISTS tasks (
      task_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, priority_rank INTEGER NOT NULL, requeued INTEGER NOT NULL,
      state TEXT NOT NULL, node_id TEXT, enqueued_at INTEGER NOT NULL, wait_deadline_at INTEGER NOT NULL,
      granted_at INTEGER, started_at INTEGER)`)
    sql.exec('CREATE INDEX IF NOT EXISTS tasks_by_node ON tasks (node_id, state)')
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)')
  }

  // Replicas

  upsertReplica(nodeId: string, report: ReplicaReport, now: number): void {
    this.#sql.exec(
      `INSERT INTO replicas (node_id, state, slots, engine, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET state = excluded.state, slots = excluded.slots, engine = excluded.engine,
       updated_at = excluded.updated_at`,
      nodeId,
      report.state,
      report.slots,
      report.engine,
      now,
    )
  }

  setReplicaState(nodeId: string, state: string, now: number): void {
    this.#sql.exec('UPDATE replicas SET state = ?, updated_at = ? WHERE node_id = ?', state, now, nodeId)
  }

  candidates(): PlacementCandidate[] {
    return sqlRows(
      this.#sql,
      ReplicaRow,
      `SELECT r.node_id, r.state, r.slots, r.recent_failures, r.last_granted_at,
        (SELECT count(*) FROM tasks t WHERE t.node_id = r.node_id AND t.state IN ('granted', 'running')) AS busy
       FROM replicas r ORDER BY r.node_id`,
    ).map((r) => ({ nodeId: r.node_id, state: r.state, slots: r.slots, busy: r.busy, recentFailures: r.recent_failures, lastGrantedAt: r.last_granted_at }))
  }

  recordFailure(nodeId: string): void {
    this.#sql.exec('UPDATE replicas SET recent_failures = recent_failures + 1 WHERE node_id = ?', nodeId)
  }

  recordSuccess(nodeId: string): void {
    this.#sql.exec('UPDATE replicas SET recent_failures = 0 WHERE node_id = ? AND recent_failures > 0', nodeId)
  }

  // Tasks

  task(taskId: string): TaskRow | undefined {
    return sqlRow(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE task_id = ?`, taskId)
  }

  queuedCount(): number {
    return sqlRow(this.#sql, Count, `SELECT count(*) AS n FROM tasks WHERE state = 'queued'`)?.n ?? 0
  }

  enqueue({ taskId, priority, requeued, now, waitDeadlineAt }: { taskId: string; priority: Priority; requeued: boolean; now: number; waitDeadlineAt: number }): void {
    this.#sql.exec(
      `INSERT INTO tasks (task_id, seq, priority_rank, requeued, state, enqueued_at, wait_deadline_at)
       VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM tasks), ?, ?, 'queued', ?, ?)`,
      taskId,
      PRIORITY_RANK[priority],
      requeued ? 1 : 0,
      now,
      waitDeadlineAt,
    )
  }

  /** The queued task that goes next, if any. */
  headOfQueue(): TaskRow | undefined {
    return sqlRow(
      this.#sql,
      TaskRow,
      `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued' ORDER BY ${QUEUE_ORDER_SQL} LIMIT 1`,
    )
  }

  /** 1-based position of a queued task, for clients that ask where they stand. */
  queuePosition(taskId: string): number | null {
    const ids = sqlRows(this.#sql, z.object({ task_id: z.string() }), `SELECT task_id FROM tasks WHERE state = 'queued' ORDER BY ${QUEUE_ORDER_SQL}`)
    const index = ids.findIndex((row) => row.task_id === taskId)
    return index === -1 ? null : index + 1
  }

  grant(taskId: string, nodeId: string, now: number): void {
    this.#sql.exec(`UPDATE tasks SET state = 'granted', node_id = ?, granted_at = ? WHERE task_id = ?`, nodeId, now, taskId)
    this.#sql.exec('UPDATE replicas SET last_granted_at = ? WHERE node_id = ?', now, nodeId)
  }

  markRunning(taskId: string, now: number): void {
    this.#sql.exec(`UPDATE tasks SET state = 'running', started_at = ? WHERE task_id = ? AND state = 'granted'`, now, taskId)
  }

  remove(taskId: string): TaskRow | undefined {
    const row = this.task(taskId)
    if (row) this.#sql.exec('DELETE FROM tasks WHERE task_id = ?', taskId)
    return row
  }

  tasksOnNode(nodeId: string): TaskRow[] {
    return sqlRows(
      this.#sql,
      TaskRow,
      `SELECT ${TASK_COLUMNS} FROM tasks WHERE node_id = ? AND state IN ('granted', 'running')`,
      nodeId,
    )
  }

  expiredQueued(now: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued' AND wait_deadline_at <= ?`, now)
  }

  expiredGrants(grantedBefore: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'granted' AND granted_at <= ?`, grantedBefore)
  }

  /** The earliest moment something in the table must be looked at again. */
  nextDeadline(grantTimeoutMs: number): number | null {
    const queued = sqlRow(this.#sql, Deadline, `SELECT min(wait_deadline_at) AS at FROM tasks WHERE state = 'queued'`)?.at ?? null
    const granted = sqlRow(this.#sql, Deadline, `SELECT min(granted_at) AS at FROM tasks WHERE state = 'granted'`)?.at ?? null
    const grantDeadline = granted === null ? null : granted + grantTimeoutMs
    if (queued === null) return grantDeadline
    if (grantDeadline === null) return queued
    return Math.min(queued, grantDeadline)
  }

  // Running average of task durations, for Retry-After.

  averageTaskMs(fallbackMs: number): number {
    return sqlRow(this.#sql, MetaValue, `SELECT value FROM meta WHERE key = 'average_task_ms'`)?.value ?? fallbackMs
  }

  recordTaskDuration(ms: number, fallbackMs: number): void {
    const next = this.averageTaskMs(fallbackMs) * 0.8 + ms * 0.2
    this.#sql.exec(`INSERT INTO meta (key, value) VALUES ('average_task_ms', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, next)
  }
}
