import { env, evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { AdmissionRequest } from '../../control-plane/pool/grant.ts'
import { freshPool, readyReplica as replica } from './support.ts'

const request = (taskId: string, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  taskId,
  priority: undefined,
  apiKeyId: null,
  maxWaitMs: 60_000,
  runDeadlineMs: 600_000,
  ...overrides,
})
const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion })

describe('PoolObject metrics', () => {
  it('counts admissions, refusals by reason, attempt ends by outcome, failovers and tokens', async () => {
    const { poolId, stub } = await freshPool({}, 'metrics')
    expect(await stub.admit(request('before-replica'))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
    await stub.syncReplica('node-a', replica(poolId), [])

    const first = await stub.admit(request('t1'))
    if (!first.ok) throw new Error('t1 not granted')
    const queued = stub.admit(request('t2'))
    await expect.poll(async () => (await stub.metrics()).queue_depth).toBe(1)
    expect(await stub.admit(request('t3'))).toMatchObject({ ok: false, error: { code: 'queue_full' } })

    await stub.release('t1', first.grant.attempt, 'completed', { usage: usage(7, 11), ttftMs: 40 })
    const second = await queued
    if (!second.ok) throw new Error('t2 not granted')
    const retried = await stub.admit(request('t2', { retryOf: { attempt: second.grant.attempt, nodeId: 'node-a' } }))
    if (!retried.ok) throw new Error('t2 not granted again')
    await stub.release('t2', retried.grant.attempt, 'failed', { usage: null, ttftMs: 5 })

    const metrics = await stub.metrics()
    expect(metrics).toMatchObject({
      pool: poolId,
      queue_depth: 0,
      slots: 1,
      slots_busy: 0,
      replicas: { ready: 1 },
      tasks_admitted: 2,
      tasks_rejected: { no_replica: 1, queue_full: 1 },
      tasks_ended: { completed: 1, failed: 1 },
      task_failovers: 1,
      prompt_tokens: 7,
      completion_tokens: 11,
    })
    expect(metrics.ttft_seconds).toMatchObject({ count: 2, sum: 0.045 })
    // 0.04 s falls in the 0.05 bucket, 0.005 s in the first one.
    expect(metrics.ttft_seconds.cumulative.slice(0, 4)).toEqual([1, 1, 1, 2])
    expect(metrics.queue_wait_seconds.count).toBe(2)
    expect(metrics.task_tokens_per_second.count).toBe(1)
  })

  it('counts a queued task that gave up waiting as rejected with queue_timeout', async () => {
    const { poolId, stub } = await freshPool({}, 'metrics')
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1'))
    const waiting = stub.admit(request('t2', { maxWaitMs: 1 }))
    await expect.poll(async () => (await stub.metrics()).queue_depth).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 5))
    await runDurableObjectAlarm(stub)
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'queue_timeout' } })
    expect((await stub.metrics()).tasks_rejected).toEqual({ queue_timeout: 1 })
  })

  it('keeps its counters when the object is evicted', async () => {
    const { poolId, stub } = await freshPool({}, 'metrics')
    await stub.syncReplica('node-a', replica(poolId), [])
    const granted = await stub.admit(request('t1'))
    if (!granted.ok) throw new Error('t1 not granted')
    await stub.release('t1', granted.grant.attempt, 'completed', { usage: usage(3, 4), ttftMs: 10 })
    // Metric changes are written by the pool's alarm within a second; eviction comes after seconds idle.
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    await evictDurableObject(stub)
    expect(await env.POOLS.getByName(poolId).metrics()).toMatchObject({ tasks_admitted: 1, tasks_ended: { completed: 1 }, completion_tokens: 4 })
  })
})
