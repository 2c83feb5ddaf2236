import { z } from 'zod'
import { PoolPolicy, ReplicaState } from '../../protocol/index.ts'
import type { Priority, ReplicaReport, Usage } from '../../protocol/index.ts'
import { BufferedUsage } from '../registry/usage.ts'
import { countedSql } from '../storage/counted-sql.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'
import type { PlacementCandidate } from './placement.ts'
import { PRIORITY_RANK, QUEUE_ORDER_SQL, serviceOrder } from './queue-order.ts'
import { CREATE_TASKS_TABLE, TASK_COLUMNS, TaskRow } from './task-row.ts'
import type { Avoidance } from './task-row.ts'
import type { ServiceState } from './queue-order.ts'

/**
 * Bumped when the tables change shape. Rows of an older shape are dropped: the Worker requests
 * that waited on them did not survive the deploy that brought the new shape either.
 */
const POOL_SCHEMA_VERSION = 7

/** Buffered usage reaches the registry this long after the first unwritten task ended, in one batch. */
export const USAGE_FLUSH_INTERVAL_MS = 2_000

const ReplicaRow = z.object({
  node_id: z.string(),
  state: ReplicaState,
  slots: z.number(),
  busy: z.number(),
  breaker_open: z.number(),
  recent_failures: z.number(),
})
const Count = z.object({ n: z.number() })
const LostRow = z.object({ node_id: z.string(), updated_at: z.number() })
const GrantedRow = z.object({ node_id: z.string(), granted_at: z.number() })
const Deadline = z.object({ at: z.number().nullable() })
const MetaValue = z.object({ value: z.number() })
const PolicyRow = z.object({ json: z.string() })

/**
 * A pool's queue and replica table in Durable Object SQLite, so a restart loses no queued task.
 * Busy slots are never stored as a counter: they are the tasks granted on a replica.
 */
export class PoolStorage {
  readonly #sql: SqlExec

  constructor(storage: SqlStorage) {
    const sql = countedSql(storage)
    this.#sql = sql
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)')
    if (this.#meta('schema_version') !== POOL_SCHEMA_VERSION) {
      sql.exec('DROP TABLE IF EXISTS tasks')
      sql.exec('DROP TABLE IF EXISTS replicas')
      sql.exec('DROP TABLE IF EXISTS policy')
      this.#setMeta('schema_version', POOL_SCHEMA_VERSION)
    }
    sql.exec(`CREATE TABLE IF NOT EXISTS replicas (
      node_id TEXT PRIMARY KEY, state TEXT NOT NULL, slots INTEGER NOT NULL, engine TEXT NOT NULL,
      breaker_open INTEGER NOT NULL DEFAULT 0, recent_failures INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL)`)
    // Nodes revoked for good: a report from one still in flight must not bring its replica back.
    sql.exec('CREATE TABLE IF NOT EXISTS revoked_nodes (node_id TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL)')
    sql.exec(CREATE_TASKS_TABLE)
    sql.exec('CREATE INDEX IF NOT EXISTS tasks_by_node ON tasks (node_id, state)')
    // Asked whenever an interactive task finds no free slot: only batch lines are in it.
    sql.exec('CREATE INDEX IF NOT EXISTS preemptible_grants ON tasks (granted_at) WHERE preemptible = 1')
    sql.exec('CREATE TABLE IF NOT EXISTS policy (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)')
    // Usage of finished tasks, written to the registry in batches by the alarm, never per task.
    sql.exec(`CREATE TABLE IF NOT EXISTS usage_buffer (
      task_id TEXT PRIMARY KEY, api_key_id TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, ended_at INTEGER NOT NULL)`)
  }

  // Policy

  policy(): PoolPolicy | null {
    const row = sqlRow(this.#sql, PolicyRow, 'SELECT json FROM policy WHERE id = 1')
    return row ? PoolPolicy.parse(JSON.parse(row.json)) : null
  }

  setPolicy(policy: PoolPolicy): void {
    this.#sql.exec('INSERT INTO policy (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json', JSON.stringify(policy))
  }

  // Usage

  bufferUsage(row: { taskId: string; apiKeyId: string | null; usage: Usage; endedAt: number }): void {
    this.#sql.exec(
      'INSERT INTO usage_buffer (task_id, api_key_id, prompt_tokens, completion_tokens, ended_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING',
      row.taskId,
      row.apiKeyId,
      row.usage.prompt_tokens,
      row.usage.completion_tokens,
      row.endedAt,
    )
    if (this.#meta('usage_flush_at') === undefined) this.#setMeta('usage_flush_at', row.endedAt + USAGE_FLUSH_INTERVAL_MS)
  }

  /** The oldest buffered rows, at most `limit`. */
  bufferedUsage(limit: number): BufferedUsage[] {
    return sqlRows(
      this.#sql,
      BufferedUsage,
      'SELECT task_id, api_key_id, prompt_tokens, completion_tokens, ended_at FROM usage_buffer ORDER BY ended_at LIMIT ?',
      limit,
    )
  }

  /** The rows reached the registry; the next flush is due once more rows are buffered. */
  usageFlushed(taskIds: readonly string[], now: number): void {
    for (const taskId of taskIds) this.#sql.exec('DELETE FROM usage_buffer WHERE task_id = ?', taskId)
    const left = sqlRow(this.#sql, Count, 'SELECT count(*) AS n FROM usage_buffer')?.n ?? 0
    if (left > 0) this.#setMeta('usage_flush_at', now)
    else this.#sql.exec(`DELETE FROM meta WHERE key = 'usage_flush_at'`)
  }

  /** The flush failed: try again later. */
  postponeUsageFlush(at: number): void {
    this.#setMeta('usage_flush_at', at)
  }

  usageFlushAt(): number | null {
    return this.#meta('usage_flush_at') ?? null
  }

  // Replicas

  upsertReplica(nodeId: string, report: ReplicaReport, now: number): void {
    this.#sql.exec(
      `INSERT INTO replicas (node_id, state, slots, engine, breaker_open, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET state = excluded.state, slots = excluded.slots, engine = excluded.engine,
       breaker_open = excluded.breaker_open, updated_at = excluded.updated_at`,
      nodeId,
      report.state,
      report.slots,
      report.engine,
      report.breaker_open ? 1 : 0,
      now,
    )
  }

  /** The replica's node went away; the time stays that of the first report, so its grace is not stretched. */
  markLost(nodeId: string, now: number): void {
    this.#sql.exec(`UPDATE replicas SET state = 'lost', updated_at = ? WHERE node_id = ? AND state != 'lost'`, now, nodeId)
  }

  /** The replica's node was revoked: it never serves again. */
  removeReplica(nodeId: string, now: number): void {
    this.#sql.exec('DELETE FROM replicas WHERE node_id = ?', nodeId)
    this.#sql.exec('INSERT OR IGNORE INTO revoked_nodes (node_id, revoked_at) VALUES (?, ?)', nodeId, now)
  }

  isRevoked(nodeId: string): boolean {
    return this.#sql.exec('SELECT 1 FROM revoked_nodes WHERE node_id = ?', nodeId).toArray().length > 0
  }

  /** When each lost replica's node went away. */
  lostAt(): Map<string, number> {
    return new Map(sqlRows(this.#sql, LostRow, `SELECT node_id, updated_at FROM replicas WHERE state = 'lost'`).map((r) => [r.node_id, r.updated_at]))
  }

  /** Every replica as placement sees it; when each was last granted a task is the caller's (in-memory) knowledge. */
  candidates(lastGrantedAt: ReadonlyMap<string, number>): PlacementCandidate[] {
    return sqlRows(
      this.#sql,
      ReplicaRow,
      `SELECT r.node_id, r.state, r.slots, r.breaker_open, r.recent_failures,
        (SELECT count(*) FROM tasks t WHERE t.node_id = r.node_id AND t.state = 'granted') AS busy
       FROM replicas r ORDER BY r.node_id`,
    ).map((r) => ({
      nodeId: r.node_id,
      state: r.state,
      slots: r.slots,
      busy: r.busy,
      breakerOpen: r.breaker_open === 1,
      recentFailures: r.recent_failures,
      lastGrantedAt: lastGrantedAt.get(r.node_id) ?? 0,
    }))
  }

  recordFailure(nodeId: string): void {
    this.#sql.exec('UPDATE replicas SET recent_failures = recent_failures + 1 WHERE node_id = ?', nodeId)
  }

  /** A success forgives the replica's failures; a write only when there were any. */
  recordSuccess(nodeId: string): void {
    const failures = sqlRow(this.#sql, z.object({ recent_failures: z.number() }), 'SELECT recent_failures FROM replicas WHERE node_id = ?', nodeId)
    if ((failures?.recent_failures ?? 0) > 0) this.#sql.exec('UPDATE replicas SET recent_failures = 0 WHERE node_id = ?', nodeId)
  }

  // Tasks

  task(taskId: string): TaskRow | undefined {
    return sqlRow(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE task_id = ?`, taskId)
  }

  queuedCount(): number {
    return sqlRow(this.#sql, Count, `SELECT count(*) AS n FROM tasks WHERE state = 'queued'`)?.n ?? 0
  }

  /** Batch-class tasks holding a slot now, whichever batch or client they came from. */
  grantedBatchCount(): number {
    return sqlRow(this.#sql, Count, `SELECT count(*) AS n FROM tasks WHERE state = 'granted' AND priority_rank = ?`, PRIORITY_RANK.batch)?.n ?? 0
  }

  enqueue(task: {
    taskId: string
    priority: Priority
    apiKeyId: string | null
    attempt: number
    requeued: boolean
    now: number
    waitDeadlineAt: number
    runDeadlineMs: number
    preemptible: boolean
    avoid?: Avoidance
    attachBy?: number
  }): void {
    this.#sql.exec(
      `INSERT INTO tasks (task_id, seq, priority_rank, requeued, state, attempt, api_key_id, enqueued_at, wait_deadline_at, run_deadline_ms,
         avoid_node, avoid_until, attach_by, preemptible)
       VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM tasks), ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      task.taskId,
      PRIORITY_RANK[task.priority],
      task.requeued ? 1 : 0,
      task.attempt,
      task.apiKeyId,
      task.now,
      task.waitDeadlineAt,
      task.runDeadlineMs,
      task.avoid?.nodeId ?? null,
      task.avoid?.until ?? null,
      task.attachBy ?? null,
      task.preemptible ? 1 : 0,
    )
  }

  /** A new task that waits for nothing: queued and granted in one write, as its first attempt. */
  insertGranted(task: {
    taskId: string
    priority: Priority
    apiKeyId: string | null
    nodeId: string
    now: number
    waitDeadlineAt: number
    runDeadlineMs: number
    preemptible: boolean
  }): void {
    this.#sql.exec(
      `INSERT INTO tasks (task_id, seq, priority_rank, requeued, state, node_id, attempt, api_key_id, enqueued_at, wait_deadline_at,
         run_deadline_ms, granted_at, run_deadline_at, preemptible)
       VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM tasks), ?, 0, 'granted', ?, 1, ?, ?, ?, ?, ?, ?, ?)`,
      task.taskId,
      PRIORITY_RANK[task.priority],
      task.nodeId,
      task.apiKeyId,
      task.now,
      task.waitDeadlineAt,
      task.runDeadlineMs,
      task.now,
      task.now + task.runDeadlineMs,
      task.preemptible ? 1 : 0,
    )
  }

  /**
   * The first `limit` queued tasks in the order they will be granted (`serviceOrder`). Only each
   * key's first `limit` tasks of a class can be among them, so no more are read.
   */
  queueInServiceOrder(limit: number, state: ServiceState): TaskRow[] {
    const rows = sqlRows(
      this.#sql,
      TaskRow,
      `SELECT ${TASK_COLUMNS} FROM (
         SELECT *, row_number() OVER (PARTITION BY priority_rank, api_key_id ORDER BY ${QUEUE_ORDER_SQL}) AS key_rank FROM tasks WHERE state = 'queued'
       ) WHERE key_rank <= ?`,
      limit,
    )
    return serviceOrder(rows, state).slice(0, limit)
  }

  /**
   * Queued tasks enqueued before `before` whose Worker had asked for them: after a restart of the
   * object, those whose Worker may be gone. Tasks still waiting to be attached keep their own deadline.
   */
  queuedBefore(before: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued' AND enqueued_at < ? AND attach_by IS NULL`, before)
  }

  /** Every queued task, in no particular order. */
  queuedTasks(): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued'`)
  }

  /** Tasks ahead of a queued one in the order they will be granted (`serviceOrder`); null when it is not queued. */
  positionOf(taskId: string, state: ServiceState): number | null {
    const position = serviceOrder(this.queuedTasks(), state).findIndex((task) => task.task_id === taskId)
    return position === -1 ? null : position
  }

  /** Someone waits for the task now: it is no longer dropped for want of one. */
  markAttached(taskId: string): void {
    this.#sql.exec('UPDATE tasks SET attach_by = NULL WHERE task_id = ? AND attach_by IS NOT NULL', taskId)
  }

  /** Queued tasks nobody asked for by their attach deadline. */
  unattachedExpired(now: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued' AND attach_by <= ?`, now)
  }

  /** When each granted task got its slot, by node: how long the running ones have been at it. */
  grantedAt(): Array<{ node_id: string; granted_at: number }> {
    return sqlRows(this.#sql, GrantedRow, `SELECT node_id, granted_at FROM tasks WHERE state = 'granted'`)
  }

  /** queued → granted: the task holds a slot on `nodeId` as its next attempt until released or past its run deadline. */
  grant(taskId: string, nodeId: string, now: number): void {
    this.#sql.exec(
      `UPDATE tasks SET state = 'granted', node_id = ?, attempt = attempt + 1, granted_at = ?, run_deadline_at = ? + run_deadline_ms
       WHERE task_id = ?`,
      nodeId,
      now,
      now,
      taskId,
    )
  }

  /** granted → queued: back at the head of its class, with a fresh wait deadline, keeping off `avoid` for a while. */
  requeue(taskId: string, waitDeadlineAt: number, avoid: Avoidance): void {
    this.#sql.exec(
      `UPDATE tasks SET state = 'queued', requeued = 1, node_id = NULL, granted_at = NULL, run_deadline_at = NULL, wait_deadline_at = ?,
         avoid_node = ?, avoid_until = ?, attach_by = NULL
       WHERE task_id = ?`,
      waitDeadlineAt,
      avoid.nodeId,
      avoid.until,
      taskId,
    )
  }

  remove(taskId: string): void {
    this.#sql.exec('DELETE FROM tasks WHERE task_id = ?', taskId)
  }

  /** Granted batch lines, the latest granted first: the one whose slot is taken back loses the least work. */
  preemptibleGrants(): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'granted' AND preemptible = 1 ORDER BY granted_at DESC`)
  }

  grantsOnNode(nodeId: string): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE node_id = ? AND state = 'granted'`, nodeId)
  }

  expiredQueued(now: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'queued' AND wait_deadline_at <= ?`, now)
  }

  expiredGrants(now: number): TaskRow[] {
    return sqlRows(this.#sql, TaskRow, `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'granted' AND run_deadline_at <= ?`, now)
  }

  /** The earliest moment something must be looked at again: a task's deadline, the end of an avoidance, the usage flush. */
  nextDeadline(now: number): number | null {
    const task =
      sqlRow(
        this.#sql,
        Deadline,
        `SELECT min(CASE state WHEN 'queued' THEN min(wait_deadline_at, coalesce(attach_by, wait_deadline_at),
             CASE WHEN avoid_until > ? THEN avoid_until ELSE wait_deadline_at END)
           ELSE run_deadline_at END) AS at FROM tasks`,
        now,
      )?.at ?? null
    const flush = this.usageFlushAt()
    if (task === null) return flush
    return flush === null ? task : Math.min(task, flush)
  }

  // Running average of task durations, for Retry-After: kept in memory by the pool, saved now and then.

  averageTaskMs(): number | undefined {
    return this.#meta('average_task_ms')
  }

  saveAverageTaskMs(ms: number): void {
    this.#setMeta('average_task_ms', ms)
  }

  #meta(key: string): number | undefined {
    return sqlRow(this.#sql, MetaValue, 'SELECT value FROM meta WHERE key = ?', key)?.value
  }

  #setMeta(key: string, value: number): void {
    this.#sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value)
  }
}
