import Database from 'libsql'
import { describe, expect, it } from 'vitest'
import { PRIORITY_RANK, QUEUE_ORDER_SQL, retryAfterSeconds, serviceOrder } from '../../../control-plane/pool/queue-order.ts'
import type { QueuedTask, ServiceState } from '../../../control-plane/pool/queue-order.ts'
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
    expect(
      order([
        { id: 'b1', priority: 'batch' },
        { id: 'i1', priority: 'interactive' },
        { id: 'b2', priority: 'batch' },
        { id: 'i2', priority: 'interactive' },
      ]),
    ).toEqual(['i1', 'i2', 'b1', 'b2'])
  })

  it('puts a task placed again after a failover at the head of its class, not ahead of the other class', () => {
    expect(
      order([
        { id: 'i1', priority: 'interactive' },
        { id: 'b1', priority: 'batch' },
        { id: 'b-again', priority: 'batch', requeued: true },
      ]),
    ).toEqual(['i1', 'b-again', 'b1'])
  })
})

describe('retryAfterSeconds', () => {
  it('is the expected drain time of the queue, at least 1 s and at most 60 s', () => {
    expect(retryAfterSeconds({ queued: 4, readySlots: 2, averageTaskMs: 3_000 })).toBe(6)
    expect(retryAfterSeconds({ queued: 0, readySlots: 8, averageTaskMs: 10 })).toBe(1)
    expect(retryAfterSeconds({ queued: 1_000, readySlots: 0, averageTaskMs: 5_000 })).toBe(60)
  })
})

describe('serviceOrder', () => {
  let seq = 0
  const task = (id: string, key: string | null, overrides: Partial<QueuedTask> = {}): QueuedTask => ({
    task_id: id,
    api_key_id: key,
    priority_rank: PRIORITY_RANK.interactive,
    requeued: 0,
    seq: ++seq,
    enqueued_at: 1_000,
    ...overrides,
  })
  const state = (lastServed: Record<string, number> = {}, now = 1_000): ServiceState => ({
    now,
    batchAgingMs: 30_000,
    lastServedAt: (key) => lastServed[key] ?? 0,
  })
  const ids = (tasks: QueuedTask[]) => tasks.map((t) => t.task_id)

  it('lets keys take turns inside a class, the key served longest ago first', () => {
    const many = Array.from({ length: 5 }, (_, i) => task(`a${i}`, 'key-a'))
    const queue = [...many, task('b0', 'key-b'), task('c0', 'key-c'), task('b1', 'key-b')]
    // key-a was just served: key-b's and key-c's first tasks go before key-a's next one.
    expect(ids(serviceOrder(queue, state({ 'key-a': 900 })))).toEqual(['b0', 'c0', 'a0', 'b1', 'a1', 'a2', 'a3', 'a4'])
    // Nobody served yet: turns by arrival.
    expect(ids(serviceOrder(queue, state())).slice(0, 4)).toEqual(['a0', 'b0', 'c0', 'a1'])
  })

  it('serves a single task of a second key after at most one task of a key with a thousand queued', () => {
    const queue = [...Array.from({ length: 1_000 }, (_, i) => task(`a${i}`, 'key-a')), task('b0', 'key-b')]
    const lastServed: Record<string, number> = {}
    const granted: string[] = []
    let rest = queue
    for (let now = 1; granted.length < 3; now++) {
      const next = serviceOrder(rest, state(lastServed))[0]
      if (!next) break
      granted.push(next.task_id)
      lastServed[next.api_key_id ?? ''] = now
      rest = rest.filter((t) => t !== next)
    }
    expect(granted.indexOf('b0')).toBeLessThanOrEqual(1)
  })

  it('serves a batch task that waited past the aging time before interactive ones, and others after them', () => {
    const old = task('batch-old', 'key-b', { priority_rank: PRIORITY_RANK.batch, enqueued_at: 0 })
    const fresh = task('batch-new', 'key-b', { priority_rank: PRIORITY_RANK.batch, enqueued_at: 40_000 })
    const interactive = task('inter', 'key-a', { enqueued_at: 39_000 })
    expect(ids(serviceOrder([fresh, interactive, old], state({}, 40_000)))).toEqual(['batch-old', 'inter', 'batch-new'])
  })

  it('keeps a task placed again after a failover at the head of its class', () => {
    const again = task('again', 'key-a', { requeued: 1 })
    expect(ids(serviceOrder([task('b0', 'key-b'), again], state({ 'key-a': 999 })))).toEqual(['again', 'b0'])
  })
})
