import Database from 'libsql'
import { describe, expect, it } from 'vitest'
import { PRIORITY_RANK, QUEUE_ORDER_SQL, retryAfterSeconds } from '../../../control-plane/pool/queue-order.ts'
import type { Priority } from '../../../protocol/index.ts'

/** Runs the queue's ORDER BY on SQLite, the engine Durable Object storage uses. */
function order(tasks: Array<{ id: string; priority: Priority; requeued?: boolean }>): string[] {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE tasks (task_id TEXT, seq INTEGER, priority_rank INTEGER, requeued INTEGER)')
  const insert = db.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?)')
  tasks.forEach((task, seq) => insert.run(task.id, seq, PRIORITY_RANK[task.priority], task.requeued ? 1 : 0))
  const rows: unknown[] = db.prepare(`SELECT task_id FROM tasks ORDER BY ${QUEUE_ORDER_SQL}`).all()
  db.close()
  return rows.map((row) => String(Reflect.get(Object(row), 'task_id')))
}

describe('queue order', () => {
  it('serves interactive before batch, first come first served within a class', () => {
    expect(order([{ id: 'b1', priority: 'batch' }, { id: 'i1', priority: 'interactive' }, { id: 'b2', priority: 'batch' }, { id: 'i2', priority: 'interactive' }])).toEqual(['i1', 'i2', 'b1', 'b2'])
  })

  it('puts a task placed again after a failover at the head of its class, not ahead of the other class', () => {
    expect(order([{ id: 'i1', priority: 'interactive' }, { id: 'b1', priority: 'batch' }, { id: 'b-again', priority: 'batch', requeued: true }])).toEqual(['i1', 'b-again', 'b1'])
  })
})

describe('retryAfterSeconds', () => {
  it('is the expected drain time of the queue, at least 1 s and at most 60 s', () => {
    expect(retryAfterSeconds({ queued: 4, readySlots: 2, averageTaskMs: 3_000 })).toBe(6)
    expect(retryAfterSeconds({ queued: 0, readySlots: 8, averageTaskMs: 10 })).toBe(1)
    expect(retryAfterSeconds({ queued: 1_000, readySlots: 0, averageTaskMs: 5_000 })).toBe(60)
  })
})
