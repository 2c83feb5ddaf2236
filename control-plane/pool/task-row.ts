import { z } from 'zod'

/** A column of the pool's `tasks` table: how a read value is checked, and its SQL type and constraints. */
function column<T extends z.ZodType>(schema: T, sql: string): T {
  return schema.meta({ sql })
}

/**
 * A row of the pool's `tasks` table, described once: the table's SQL (`CREATE_TASKS_TABLE`), the
 * column list every query reads (`TASK_COLUMNS`) and the check of each row read come from here.
 */
export const TaskRow = z.object({
  task_id: column(z.string(), 'TEXT PRIMARY KEY'),
  /** Arrival order. */
  seq: column(z.number(), 'INTEGER NOT NULL'),
  priority_rank: column(z.number(), 'INTEGER NOT NULL'),
  /** 1 for a task placed again after a failure: it goes first in its class. */
  requeued: column(z.number(), 'INTEGER NOT NULL'),
  state: column(z.enum(['queued', 'granted']), 'TEXT NOT NULL'),
  node_id: column(z.string().nullable(), 'TEXT'),
  attempt: column(z.number(), 'INTEGER NOT NULL'),
  api_key_id: column(z.string().nullable(), 'TEXT'),
  enqueued_at: column(z.number(), 'INTEGER NOT NULL'),
  wait_deadline_at: column(z.number(), 'INTEGER NOT NULL'),
  run_deadline_ms: column(z.number(), 'INTEGER NOT NULL'),
  granted_at: column(z.number().nullable(), 'INTEGER'),
  run_deadline_at: column(z.number().nullable(), 'INTEGER'),
  avoid_node: column(z.string().nullable(), 'TEXT'),
  avoid_until: column(z.number().nullable(), 'INTEGER'),
  /** A queued task nobody waits for yet is dropped at this time unless its `admit` comes. */
  attach_by: column(z.number().nullable(), 'INTEGER'),
  /** 1 for a batch line: an interactive task may take its slot, and its batch runs it again. */
  preemptible: column(z.number(), 'INTEGER NOT NULL DEFAULT 0'),
})
export type TaskRow = z.infer<typeof TaskRow>

function sqlOf(name: string, schema: z.ZodType): string {
  const sql = schema.meta()?.['sql']
  if (typeof sql !== 'string') throw new Error(`tasks column ${name} has no SQL type`)
  return `${name} ${sql}`
}

export const TASK_COLUMNS = Object.keys(TaskRow.shape).join(', ')

export const CREATE_TASKS_TABLE = `CREATE TABLE IF NOT EXISTS tasks (${Object.entries(TaskRow.shape)
  .map(([name, schema]) => sqlOf(name, schema))
  .join(', ')})`

/** A node a task placed again keeps off until a moment: it just failed there. */
export interface Avoidance {
  nodeId: string
  until: number
}
