import { describe, expect, it } from 'vitest'
import { alarmNeedsSetting, nextAlarmAt } from '../../../control-plane/pool/alarm-schedule.ts'
import { AffinityTable } from '../../../control-plane/pool/placement.ts'
import type { PlacementCandidate } from '../../../control-plane/pool/placement.ts'
import type { TaskRow } from '../../../control-plane/pool/task-row.ts'
import { PRIORITY_RANK } from '../../../control-plane/pool/queue-order.ts'
import { ReplicaLoads } from '../../../control-plane/pool/replica-loads.ts'
import { UNSTREAMED_GRANT_GRACE_MS, mayBeInFlight, nextAverageTaskMs, nextGrant, preemptionFor } from '../../../control-plane/pool/slots.ts'
import { standingOf } from '../../../control-plane/pool/standing.ts'
import { Waiters } from '../../../control-plane/pool/waiters.ts'

const NOW = 1_000_000

function candidate(nodeId: string, overrides: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return { nodeId, state: 'ready', slots: 1, busy: 0, breakerOpen: false, recentFailures: 0, lastGrantedAt: 0, ...overrides }
}

function queued(taskId: string, overrides: Partial<TaskRow> = {}): TaskRow {
  return {
    task_id: taskId,
    seq: 1,
    priority_rank: 0,
    requeued: 0,
    state: 'queued',
    node_id: null,
    attempt: 0,
    api_key_id: null,
    enqueued_at: NOW,
    wait_deadline_at: NOW + 1_000,
    run_deadline_ms: 60_000,
    granted_at: null,
    run_deadline_at: null,
    avoid_node: null,
    avoid_until: null,
    attach_by: null,
    preemptible: 0,
    ...overrides,
  }
}

describe('nextGrant', () => {
  const base = { isWaiting: () => true, affinityKeyOf: () => undefined, affinity: new AffinityTable(), batchFull: () => false, now: NOW }

  it('grants the first waiting task in service order a free slot', () => {
    const next = nextGrant({ ...base, queue: [queued('t1'), queued('t2')], placeable: [candidate('a')] })
    expect(next?.task.task_id).toBe('t1')
    expect(next?.replica.nodeId).toBe('a')
  })

  it('skips tasks nobody waits for (after a restart, until their Worker asks again)', () => {
    const next = nextGrant({ ...base, isWaiting: (id) => id === 't2', queue: [queued('t1'), queued('t2')], placeable: [candidate('a')] })
    expect(next?.task.task_id).toBe('t2')
  })

  it('keeps a task off the node it is avoiding until the avoidance ends, and then the head still waits', () => {
    const avoiding = queued('t1', { avoid_node: 'a', avoid_until: NOW + 500 })
    expect(nextGrant({ ...base, queue: [avoiding, queued('t2')], placeable: [candidate('a')] })).toBeNull()
    expect(nextGrant({ ...base, queue: [avoiding], placeable: [candidate('a'), candidate('b')] })?.replica.nodeId).toBe('b')
    expect(nextGrant({ ...base, now: NOW + 501, queue: [avoiding], placeable: [candidate('a')] })?.replica.nodeId).toBe('a')
  })

  it("lets batch tasks wait while batches hold the pool's batch share, and grants the interactive task behind them", () => {
    const queue = [queued('b1', { priority_rank: PRIORITY_RANK.batch }), queued('i1'), queued('b2', { priority_rank: PRIORITY_RANK.batch })]
    expect(nextGrant({ ...base, queue, placeable: [candidate('a')] })?.task.task_id).toBe('b1')
    expect(nextGrant({ ...base, batchFull: () => true, queue, placeable: [candidate('a')] })?.task.task_id).toBe('i1')
    expect(
      nextGrant({ ...base, batchFull: () => true, queue: queue.filter((row) => row.priority_rank === PRIORITY_RANK.batch), placeable: [candidate('a')] }),
    ).toBeNull()
  })

  it('grants nothing when every slot is busy', () => {
    expect(nextGrant({ ...base, queue: [queued('t1')], placeable: [candidate('a', { busy: 1 })] })).toBeNull()
  })
})

describe('preemptionFor', () => {
  const lines = [
    queued('line-new', { state: 'granted', node_id: 'a', granted_at: NOW - 10, priority_rank: PRIORITY_RANK.batch, preemptible: 1 }),
    queued('line-old', { state: 'granted', node_id: 'b', granted_at: NOW - 500, priority_rank: PRIORITY_RANK.batch, preemptible: 1 }),
  ]
  const base = { isWaiting: () => true, batchFull: () => false, preemptible: () => lines, now: NOW }
  const full = [candidate('a', { busy: 1 }), candidate('b', { busy: 1 })]

  it('takes the slot of the latest granted batch line for an interactive task at the head', () => {
    expect(preemptionFor({ ...base, queue: [queued('i1')], placeable: full })).toMatchObject({
      task: { task_id: 'i1' },
      preempted: { line: { task_id: 'line-new' }, nodeId: 'a' },
    })
  })

  it('takes none for a batch task at the head, and none on a node the head avoids or that is not ready', () => {
    expect(preemptionFor({ ...base, queue: [queued('b1', { priority_rank: PRIORITY_RANK.batch }), queued('i1')], placeable: full })).toBeNull()
    const avoiding = queued('i1', { avoid_node: 'a', avoid_until: NOW + 500 })
    expect(preemptionFor({ ...base, queue: [avoiding], placeable: full })?.preempted).toMatchObject({ line: { task_id: 'line-old' }, nodeId: 'b' })
    expect(preemptionFor({ ...base, queue: [queued('i1')], placeable: [candidate('a', { busy: 1, state: 'draining' })] })).toBeNull()
  })

  it('passes over batch tasks held back by the batch share to the interactive task behind them', () => {
    const queue = [queued('b1', { priority_rank: PRIORITY_RANK.batch }), queued('i1')]
    expect(preemptionFor({ ...base, batchFull: () => true, queue, placeable: full })).toMatchObject({
      task: { task_id: 'i1' },
      preempted: { line: { task_id: 'line-new' } },
    })
  })
})

describe('slot bookkeeping', () => {
  it('counts a grant as possibly in flight only when this instance made it within the grace', () => {
    expect(mayBeInFlight(NOW - 10, { startedAt: NOW - 100, now: NOW })).toBe(true)
    expect(mayBeInFlight(NOW - UNSTREAMED_GRANT_GRACE_MS - 1, { startedAt: 0, now: NOW })).toBe(false)
    expect(mayBeInFlight(NOW - 10, { startedAt: NOW, now: NOW })).toBe(false)
    expect(mayBeInFlight(null, { startedAt: 0, now: NOW })).toBe(false)
  })

  it('moves the average task length a fifth of the way to each new task', () => {
    expect(nextAverageTaskMs(1_000, 2_000)).toBe(1_200)
  })
})

describe('standingOf', () => {
  it('predicts a start from the busy slots of ready replicas, with no engine to wait for', () => {
    const standing = standingOf({
      position: 1,
      placeable: [candidate('a', { slots: 2, busy: 2 })],
      grants: [
        { node_id: 'a', granted_at: NOW - 1_000 },
        { node_id: 'a', granted_at: NOW - 3_000 },
      ],
      averageTaskMs: 4_000,
      loads: new ReplicaLoads(),
      now: NOW,
    })
    expect(standing).toEqual({ position: 1, predictedStartMs: 3_000, loading: null })
  })

  it('waits for an engine that is starting when no replica is ready, and says which', () => {
    const loads = new ReplicaLoads()
    loads.observe('a', 'starting', NOW - 10_000)
    const standing = standingOf({ position: 0, placeable: [candidate('a', { state: 'starting' })], grants: [], averageTaskMs: 4_000, loads, now: NOW })
    expect(standing.loading).toMatchObject({ reason: 'replica_starting', nodeId: 'a' })
    expect(standing.predictedStartMs).toBe(loads.upInMs('a', NOW))
  })
})

describe('the alarm schedule', () => {
  it('fires at the earliest due time, and is set again only when that is earlier than the one set', () => {
    expect(nextAlarmAt([null, 30, 10, null])).toBe(10)
    expect(nextAlarmAt([null, null])).toBeNull()
    expect(alarmNeedsSetting(null, 10)).toBe(true)
    expect(alarmNeedsSetting(5, 10)).toBe(false)
    expect(alarmNeedsSetting(20, 10)).toBe(true)
    expect(alarmNeedsSetting(20, null)).toBe(false)
  })
})

describe('Waiters', () => {
  it('answers a waiting admission once, and forgets it and its affinity key', async () => {
    const waiters = new Waiters()
    const answer = waiters.wait('t1', { affinityKey: 'session-1' })
    expect(waiters.has('t1')).toBe(true)
    expect(waiters.affinityKeyOf('t1')).toBe('session-1')
    waiters.settle('t1', { ok: false, error: { code: 'cancelled', message: 'gone' } })
    waiters.settle('t1', { ok: false, error: { code: 'queue_timeout', message: 'late' } })
    await expect(answer).resolves.toEqual({ ok: false, error: { code: 'cancelled', message: 'gone' } })
    expect(waiters.has('t1')).toBe(false)
    expect(waiters.affinityKeyOf('t1')).toBeUndefined()
  })
})

describe('the tasks table', () => {
  it('is created and read from one description', async () => {
    const { CREATE_TASKS_TABLE, TASK_COLUMNS, TaskRow } = await import('../../../control-plane/pool/task-row.ts')
    expect(TASK_COLUMNS.split(', ')).toEqual(Object.keys(TaskRow.shape))
    expect(CREATE_TASKS_TABLE).toContain('task_id TEXT PRIMARY KEY, seq INTEGER NOT NULL')
    expect(CREATE_TASKS_TABLE).toContain('attach_by INTEGER, preemptible INTEGER NOT NULL DEFAULT 0)')
  })
})
