import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { PoolPolicy } from '../../protocol/index.ts'
import type { AdmissionRequest, AdmissionResult } from '../../control-plane/pool/grant.ts'
import { freshPool, readyReplica } from './support.ts'

/** A pool with one ready single-slot replica on node-a, told its policy as PATCH /v2/pools would. */
async function servedPool(policy: Partial<PoolPolicy> = {}) {
  const { poolId, stub } = await freshPool({ queue_capacity: 100, ...policy })
  await stub.syncReplica('node-a', readyReplica(poolId), [])
  return stub
}

function request(taskId: string, apiKeyId: string | null, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { taskId, priority: undefined, apiKeyId, maxWaitMs: 60_000, runDeadlineMs: 600_000, ...overrides }
}

function granted(result: AdmissionResult) {
  if (!result.ok) throw new Error(`expected a grant, got ${result.error.code}`)
  return result.grant
}

/** Runs the queue one task at a time on the single slot: each grant is released as it comes, in the order granted. */
function serveInOrder(stub: ReturnType<typeof env.POOLS.getByName>) {
  const order: string[] = []
  const track = (admission: Promise<AdmissionResult>) =>
    admission.then(async (result) => {
      const grant = granted(result)
      order.push(grant.taskId)
      await stub.release(grant.taskId, grant.attempt, 'completed')
    })
  return { order, track }
}

describe('PoolObject service order', () => {
  it("grants a second key's single task after one slot's turn, though another key queued fifty", async () => {
    const stub = await servedPool()
    const running = granted(await stub.admit(request('running', 'key-busy')))
    const { order, track } = serveInOrder(stub)
    const all = Array.from({ length: 50 }, (_, i) => track(stub.admit(request(`busy-${i}`, 'key-busy'))))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(50)
    all.push(track(stub.admit(request('single', 'key-quiet'))))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(51)
    await stub.release(running.taskId, running.attempt, 'completed')
    await Promise.all(all)
    expect(order[0]).toBe('single')
    expect(order.slice(1)).toEqual(Array.from({ length: 50 }, (_, i) => `busy-${i}`))
  })

  it("holds batch tasks of every key to the pool's batch_slot_share of its ready slots, and gives the rest to interactive tasks", async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 100, batch_slot_share: 0.5 })
    await stub.syncReplica('node-a', readyReplica(poolId, { slots: 2 }), [])
    const first = granted(await stub.admit(request('batch-a', 'key-a', { priority: 'batch' })))
    // Another key's batch task waits: one of the two slots is the whole batch share.
    const second = stub.admit(request('batch-b', 'key-b', { priority: 'batch' }))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    expect(granted(await stub.admit(request('interactive', 'key-c'))).taskId).toBe('interactive')
    await stub.release(first.taskId, first.attempt, 'completed')
    expect(granted(await second).taskId).toBe('batch-b')
  })

  it('leaves a slot free for interactive traffic after a preemption, until none came for PREEMPTION_HOLD_MS (then the waiting line gets it by itself)', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 100 })
    await stub.syncReplica('node-a', readyReplica(poolId, { slots: 2 }), [])
    const line = (taskId: string) => request(taskId, 'key-batch', { priority: 'batch', preemptible: true })
    const first = granted(await stub.admit(line('line-1')))
    granted(await stub.admit(line('line-2')))
    const interactive = granted(await stub.admit(request('interactive-1', 'key-chat')))
    expect((await stub.metrics()).tasks_preempted).toBe(1)
    await stub.release(interactive.taskId, interactive.attempt, 'completed')

    // One slot is free, but it is held for interactive traffic: a batch line waits, the next interactive task takes it at once.
    const third = stub.admit(line('line-3'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    const next = granted(await stub.admit(request('interactive-2', 'key-chat')))
    expect((await stub.metrics()).tasks_preempted).toBe(1)
    await stub.release(next.taskId, next.attempt, 'completed')

    // The hold ends with no other change in the pool: the waiting line gets the slot by itself.
    expect(granted(await third).taskId).toBe('line-3')
    await stub.release(first.taskId, first.attempt, 'completed')
    expect(granted(await stub.admit(line('line-4'))).taskId).toBe('line-4')
  })

  it('grants a batch task that waited past its aging time before interactive tasks queued after it', async () => {
    const stub = await servedPool({ batch_aging_ms: 0 })
    const running = granted(await stub.admit(request('running', 'key-a')))
    const { order, track } = serveInOrder(stub)
    const all = [track(stub.admit(request('inter-1', 'key-a')))]
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    all.push(track(stub.admit(request('batch', 'key-b', { priority: 'batch' }))))
    all.push(track(stub.admit(request('inter-2', 'key-a'))))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(3)
    await stub.release(running.taskId, running.attempt, 'completed')
    await Promise.all(all)
    expect(order).toEqual(['batch', 'inter-1', 'inter-2'])
  })

  it('keeps batch tasks behind interactive ones while they are younger than the aging time', async () => {
    const stub = await servedPool({ batch_aging_ms: 3_600_000 })
    const running = granted(await stub.admit(request('running', 'key-a')))
    const { order, track } = serveInOrder(stub)
    const all = [track(stub.admit(request('batch', 'key-b', { priority: 'batch' })))]
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    all.push(track(stub.admit(request('inter', 'key-a'))))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(2)
    await stub.release(running.taskId, running.attempt, 'completed')
    await Promise.all(all)
    expect(order).toEqual(['inter', 'batch'])
  })
})

describe('PoolObject key limits', () => {
  it('refuses a key past its concurrency with rate_limit_concurrency while another key is served, and frees the place when the task settles', async () => {
    const stub = await servedPool()
    const limited = { max_concurrent: 1 }
    const first = await stub.admit(request('first', 'key-limited', { keyLimits: limited }))
    expect(first).toMatchObject({ ok: true, rateLimitHeaders: { 'x-ratelimit-limit-concurrency': '1', 'x-ratelimit-remaining-concurrency': '0' } })
    expect(await stub.admit(request('second', 'key-limited', { keyLimits: limited }))).toMatchObject({
      ok: false,
      error: { code: 'rate_limit_concurrency', retryAfterSeconds: 1, headers: { 'x-ratelimit-remaining-concurrency': '0' } },
    })
    // Another key queues for the slot as usual.
    const other = stub.admit(request('other', 'key-other'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await stub.release('first', granted(first).attempt, 'completed')
    const otherGrant = granted(await other)
    await stub.release(otherGrant.taskId, otherGrant.attempt, 'completed')
    await env.API_KEYS.getByName('key-limited').settle({ taskId: 'first', tokens: 10 })
    expect(await stub.admit(request('third', 'key-limited', { keyLimits: limited }))).toMatchObject({ ok: true })
  })

  it("applies the pool's default limits to a key that sets none, and not to one that lifts them", async () => {
    const stub = await servedPool({ queue_capacity: 10, key_limits: { requests_per_minute: 1 } })
    const keyId = `key-${crypto.randomUUID().slice(0, 8)}`
    const first = granted(await stub.admit(request('first', keyId)))
    expect(await stub.admit(request('second', keyId))).toMatchObject({
      ok: false,
      error: { code: 'rate_limit_rpm', headers: { 'x-ratelimit-remaining-requests': '0' } },
    })
    await stub.release(first.taskId, first.attempt, 'completed')
    expect(await stub.admit(request('unlimited', 'key-free', { keyLimits: { requests_per_minute: null } }))).toMatchObject({ ok: true })
  })
})
