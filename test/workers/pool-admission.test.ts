import { env, runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { ReplicaReport } from '../../protocol/index.ts'
import type { AdmissionRequest } from '../../control-plane/task-grant.ts'

function freshPool() {
  const poolId = `pool-${crypto.randomUUID().slice(0, 8)}`
  return { poolId, stub: env.POOLS.get(env.POOLS.idFromName(poolId)) }
}

function replica(pool: string, overrides: Partial<ReplicaReport> = {}): ReplicaReport {
  return { pool, engine: 'openai', state: 'ready', slots: 1, slots_busy: 0, engine_version: null, reason: null, breaker_open: false, ...overrides }
}

function request(taskId: string, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { taskId, priority: 'interactive', requeued: false, maxWaitMs: 60_000, queueCapacity: 1, endpoint: 'chat', ...overrides }
}

describe('PoolObject admission', () => {
  it('refuses with no_replica when no node has registered the pool', async () => {
    const { poolId, stub } = freshPool()
    const result = await stub.admit(poolId, request('t1'))
    expect(result).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('grants a free slot at once on a ready replica', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    expect(await stub.admit(poolId, request('t1'))).toEqual({ ok: true, grant: { taskId: 't1', poolId, nodeId: 'node-a', replicaId: `node-a/${poolId}` } })
    expect((await stub.status()).replicas).toEqual([{ nodeId: 'node-a', state: 'ready', slots: 1, busy: 1 }])
  })

  it('queues past the free slots, refuses past the capacity with Retry-After, and grants the queue in order', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    expect(await stub.admit(poolId, request('t1'))).toMatchObject({ ok: true })
    const waiting = stub.admit(poolId, request('t2'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    const refused = await stub.admit(poolId, request('t3'))
    expect(refused).toMatchObject({ ok: false, error: { code: 'queue_full', retryAfterSeconds: expect.any(Number) } })
    await stub.release('t1', 'completed')
    expect(await waiting).toMatchObject({ ok: true, grant: { taskId: 't2', nodeId: 'node-a' } })
  })

  it('places interactive tasks before batch ones and a requeued task at the head of its class', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    await stub.admit(poolId, request('running', { queueCapacity: 10 }))
    const order: string[] = []
    const track = (taskId: string, extra: Partial<AdmissionRequest>) =>
      stub.admit(poolId, request(taskId, { queueCapacity: 10, ...extra })).then(async (r) => {
        order.push(taskId)
        if (r.ok) await stub.release(taskId, 'completed')
      })
    const all = [track('batch-1', { priority: 'batch' }), track('inter-1', {}), track('inter-2', {})]
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(3)
    all.push(track('requeued', { requeued: true }))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(4)
    await stub.release('running', 'completed')
    await Promise.all(all)
    expect(order).toEqual(['requeued', 'inter-1', 'inter-2', 'batch-1'])
  })

  it('spreads tasks over equal replicas', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId, { slots: 2 }), [])
    await stub.syncReplica(poolId, 'node-b', replica(poolId, { slots: 2 }), [])
    const nodes = new Set<string>()
    for (const taskId of ['t1', 't2']) {
      const result = await stub.admit(poolId, request(taskId, { queueCapacity: 4 }))
      if (result.ok) nodes.add(result.grant.nodeId)
    }
    expect([...nodes].sort()).toEqual(['node-a', 'node-b'])
  })

  it('fails a queued task with queue_timeout when its wait deadline passes', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    await stub.admit(poolId, request('t1'))
    const waiting = stub.admit(poolId, request('t2', { maxWaitMs: 1 }))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await expect.poll(() => runDurableObjectAlarm(stub)).toBe(true)
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'queue_timeout' } })
    expect((await stub.status()).queueDepth).toBe(0)
  })

  it('frees the slots of a lost node and refuses new tasks when no replica is left', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    await stub.admit(poolId, request('t1'))
    await stub.replicaLost(poolId, 'node-a')
    expect((await stub.status()).replicas).toEqual([{ nodeId: 'node-a', state: 'lost', slots: 1, busy: 0 }])
    expect(await stub.admit(poolId, request('t2'))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('gives back the slot of a running task that its agent no longer reports', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
    await stub.admit(poolId, request('t1'))
    await stub.markRunning('t1')
    await stub.syncReplica(poolId, 'node-a', replica(poolId, { slots_busy: 1 }), ['t1'])
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
    // Past the grace for a task that just ended, a heartbeat without it frees the slot.
    await expect
      .poll(
        async () => {
          await stub.syncReplica(poolId, 'node-a', replica(poolId), [])
          return (await stub.status()).replicas[0]?.busy
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(0)
  })

  it('releases the same task twice without freeing a second slot', async () => {
    const { poolId, stub } = freshPool()
    await stub.syncReplica(poolId, 'node-a', replica(poolId, { slots: 2 }), [])
    await stub.admit(poolId, request('t1', { queueCapacity: 2 }))
    await stub.admit(poolId, request('t2', { queueCapacity: 2 }))
    await stub.release('t1', 'completed')
    await stub.release('t1', 'completed')
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
  })
})
