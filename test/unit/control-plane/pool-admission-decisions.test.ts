import { describe, expect, it } from 'vitest'
import { FAILED_NODE_BACKOFF_MS, grantOf, newTaskRefusal, newTaskRow, retryDecision } from '../../../control-plane/pool/admission.ts'
import type { PoolView } from '../../../control-plane/pool/admission.ts'
import type { AdmissionRequest } from '../../../control-plane/pool/grant.ts'
import type { PlacementCandidate } from '../../../control-plane/pool/placement.ts'
import type { TaskRow } from '../../../control-plane/pool/task-row.ts'
import { DEFAULT_POOL_POLICY } from '../../../protocol/index.ts'

const NOW = 1_000_000

function candidate(nodeId: string, overrides: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return { nodeId, state: 'ready', slots: 2, busy: 0, breakerOpen: false, recentFailures: 0, lastGrantedAt: 0, ...overrides }
}

function pool(overrides: Partial<PoolView> = {}): PoolView {
  return { poolId: 'p', policy: DEFAULT_POOL_POLICY, candidates: [candidate('a')], queued: 0, averageTaskMs: 5_000, cannotStart: () => null, ...overrides }
}

const request: AdmissionRequest = { taskId: 't1', priority: undefined, apiKeyId: 'k1' }

function grantedRow(overrides: Partial<TaskRow> = {}): TaskRow {
  return {
    task_id: 't1',
    seq: 1,
    priority_rank: 0,
    requeued: 0,
    state: 'granted',
    node_id: 'a',
    attempt: 1,
    api_key_id: 'k1',
    enqueued_at: NOW - 10,
    wait_deadline_at: NOW + 1_000,
    run_deadline_ms: 60_000,
    granted_at: NOW - 5,
    run_deadline_at: NOW + 60_000,
    avoid_node: null,
    avoid_until: null,
    attach_by: null,
    preemptible: 0,
    ...overrides,
  }
}

describe('newTaskRefusal', () => {
  it('refuses a pool with no replica, or none that can serve, with no_replica saying which', () => {
    expect(newTaskRefusal(pool({ candidates: [] }), false)?.error).toMatchObject({
      code: 'no_replica',
      message: expect.stringContaining('no replica is registered'),
    })
    const down = [candidate('a', { state: 'lost' }), candidate('b', { state: 'failed', breakerOpen: true })]
    expect(newTaskRefusal(pool({ candidates: down }), false)?.error).toMatchObject({ code: 'no_replica', message: expect.stringContaining('failed or lost') })
  })

  it('asks the lifecycle whether a stopped replica may start, and passes on its reason', () => {
    const stopped = [candidate('a', { state: 'stopped' })]
    expect(newTaskRefusal(pool({ candidates: stopped }), false)).toBeNull()
    expect(newTaskRefusal(pool({ candidates: stopped, cannotStart: () => 'drained for maintenance' }), false)?.error).toEqual({
      code: 'no_replica',
      message: 'drained for maintenance',
    })
  })

  it('refuses a full queue with Retry-After, unless a free slot takes the task at once', () => {
    const full = pool({ policy: { ...DEFAULT_POOL_POLICY, queue_capacity: 2 }, queued: 2 })
    expect(newTaskRefusal(full, false)?.error).toMatchObject({
      code: 'queue_full',
      message: 'pool "p" queue is full (2 waiting)',
      retryAfterSeconds: expect.any(Number),
    })
    expect(newTaskRefusal(full, true)).toBeNull()
  })
})

describe('newTaskRow', () => {
  it("takes the pool's deadlines and default priority unless the request names its own", () => {
    expect(newTaskRow(request, DEFAULT_POOL_POLICY, NOW)).toEqual({
      taskId: 't1',
      apiKeyId: 'k1',
      priority: 'interactive',
      now: NOW,
      waitDeadlineAt: NOW + DEFAULT_POOL_POLICY.queue_timeout_ms,
      runDeadlineMs: DEFAULT_POOL_POLICY.run_timeout_ms,
      preemptible: false,
    })
    expect(newTaskRow({ ...request, priority: 'batch', maxWaitMs: 10, runDeadlineMs: 20, preemptible: true }, DEFAULT_POOL_POLICY, NOW)).toMatchObject({
      priority: 'batch',
      waitDeadlineAt: NOW + 10,
      runDeadlineMs: 20,
      preemptible: true,
    })
  })
})

describe('retryDecision', () => {
  const context = { poolId: 'p', policy: DEFAULT_POOL_POLICY, placeable: [candidate('a'), candidate('b')], now: NOW }

  it('changes nothing for a repeated or stale retry', () => {
    expect(retryDecision(grantedRow({ state: 'queued' }), { attempt: 1, nodeId: 'a' }, request, context)).toEqual({ kind: 'unchanged' })
    expect(retryDecision(grantedRow({ attempt: 2 }), { attempt: 1, nodeId: 'a' }, request, context)).toEqual({ kind: 'unchanged' })
  })

  it('puts a granted attempt back in the queue, keeping off its node for a moment', () => {
    const row = grantedRow()
    expect(retryDecision(row, { attempt: 1, nodeId: 'a' }, request, context)).toEqual({
      kind: 'requeue',
      row,
      waitDeadlineAt: NOW + DEFAULT_POOL_POLICY.queue_timeout_ms,
      avoid: { nodeId: 'a', until: NOW + FAILED_NODE_BACKOFF_MS },
    })
  })

  it('keeps off a silent engine for the whole wait, and refuses when no other replica can serve', () => {
    const elsewhere = retryDecision(grantedRow(), { attempt: 1, nodeId: 'a', elsewhereOnly: true }, request, context)
    expect(elsewhere).toMatchObject({ kind: 'requeue', avoid: { nodeId: 'a', until: NOW + DEFAULT_POOL_POLICY.queue_timeout_ms } })
    const alone = retryDecision(grantedRow(), { attempt: 1, nodeId: 'a', elsewhereOnly: true }, request, { ...context, placeable: [candidate('a')] })
    expect(alone).toMatchObject({ kind: 'refused', refusal: { error: { code: 'no_replica', message: expect.stringContaining('node a') } } })
  })

  it('queues afresh, as interactive, a task whose row was already taken back', () => {
    expect(retryDecision(undefined, { attempt: 1, nodeId: 'a' }, request, context)).toMatchObject({
      kind: 'enqueue',
      row: { taskId: 't1', priority: 'interactive' },
      avoid: { nodeId: 'a' },
    })
  })
})

describe('grantOf', () => {
  it("carries the pool's deadlines for the attempt", () => {
    expect(grantOf({ taskId: 't1', poolId: 'p', nodeId: 'a', attempt: 2, policy: DEFAULT_POOL_POLICY })).toEqual({
      taskId: 't1',
      poolId: 'p',
      nodeId: 'a',
      replicaId: 'a/p',
      attempt: 2,
      firstTokenTimeoutMs: DEFAULT_POOL_POLICY.first_token_timeout_ms,
      idleTimeoutMs: DEFAULT_POOL_POLICY.idle_timeout_ms,
      runTimeoutMs: DEFAULT_POOL_POLICY.run_timeout_ms,
    })
  })
})
