import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { UNSTREAMED_GRANT_GRACE_MS } from '../../control-plane/pool/slots.ts'
import type { AdmissionRequest } from '../../control-plane/pool/grant.ts'
import { registryFor } from '../../control-plane/registry/registry-for.ts'
import { usage } from '../../db/schema.ts'
import { eq } from 'drizzle-orm'
import { crashDurableObject, freshPool, readyReplica as replica } from './support.ts'

function request(taskId: string, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { taskId, priority: undefined, apiKeyId: null, maxWaitMs: 60_000, runDeadlineMs: 600_000, ...overrides }
}

describe('PoolObject admission', () => {
  it('refuses with model_not_found a pool the registry does not know', async () => {
    const stub = env.POOLS.getByName(`unknown-${crypto.randomUUID().slice(0, 8)}`)
    expect(await stub.admit(request('t1'))).toMatchObject({ ok: false, error: { code: 'model_not_found' } })
  })

  it('refuses with no_replica when no node has registered the pool', async () => {
    const { stub } = await freshPool()
    const result = await stub.admit(request('t1'))
    expect(result).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('grants a free slot at once on a ready replica, naming the pool it knows by its own name', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit(request('t1'))).toEqual({
      ok: true,
      grant: {
        taskId: 't1',
        poolId,
        nodeId: 'node-a',
        replicaId: `node-a/${poolId}`,
        attempt: 1,
        firstTokenTimeoutMs: 60_000,
        idleTimeoutMs: 30_000,
        runTimeoutMs: 600_000,
      },
    })
    expect((await stub.status()).replicas).toEqual([{ nodeId: 'node-a', state: 'ready', slots: 1, busy: 1 }])
  })

  it('grants a free slot even when the queue capacity is 0', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 0 })
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit(request('t1'))).toMatchObject({ ok: true })
    expect(await stub.admit(request('t2'))).toMatchObject({ ok: false, error: { code: 'queue_full' } })
  })

  it('queues past the free slots, refuses past the capacity with Retry-After, and grants the queue in order', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit(request('t1'))).toMatchObject({ ok: true })
    const waiting = stub.admit(request('t2'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    const refused = await stub.admit(request('t3'))
    expect(refused).toMatchObject({ ok: false, error: { code: 'queue_full', retryAfterSeconds: expect.any(Number) } })
    await stub.release('t1', 1, 'completed')
    expect(await waiting).toMatchObject({ ok: true, grant: { taskId: 't2', nodeId: 'node-a' } })
  })

  it('places interactive tasks before batch ones and a task placed again at the head of its class', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 10 })
    await stub.syncReplica('node-a', replica(poolId), [])
    const failing = await stub.admit(request('failing'))
    if (!failing.ok) throw new Error('expected a grant')
    const order: string[] = []
    const track = (taskId: string, admission: Promise<Awaited<ReturnType<typeof stub.admit>>>) =>
      admission.then(async (r) => {
        order.push(taskId)
        if (r.ok) await stub.release(taskId, r.grant.attempt, 'completed')
      })
    const all = ['batch-1', 'inter-1', 'inter-2'].map((taskId) =>
      track(taskId, stub.admit(request(taskId, { priority: taskId.startsWith('batch') ? 'batch' : 'interactive' }))),
    )
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(3)
    // The running task fails before its first token: its retry takes its slot back and goes first.
    all.push(track('failing', stub.admit(request('failing', { retryOf: { attempt: failing.grant.attempt, nodeId: 'node-a' } }))))
    await Promise.all(all)
    expect(order).toEqual(['failing', 'inter-1', 'inter-2', 'batch-1'])
  })

  it('ignores a release that names an attempt the task no longer holds', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 2 })
    await stub.syncReplica('node-a', replica(poolId, { slots: 2 }), [])
    const first = await stub.admit(request('t1'))
    if (!first.ok) throw new Error('expected a grant')
    const second = await stub.admit(request('t1', { retryOf: { attempt: first.grant.attempt, nodeId: 'node-a' } }))
    expect(second).toMatchObject({ ok: true, grant: { attempt: 2 } })
    await stub.release('t1', 1, 'failed_before_start')
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
    await stub.release('t1', 2, 'completed')
    expect((await stub.status()).replicas[0]?.busy).toBe(0)
  })

  it('places a task again on another replica, keeping off the node it just failed on', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.syncReplica('node-b', replica(poolId), [])
    const first = await stub.admit(request('t1'))
    expect(first).toMatchObject({ ok: true, grant: { nodeId: 'node-a' } })
    if (!first.ok) throw new Error('expected a grant')
    // node-a still says it is ready with a free slot: its engine's crash report is on its way.
    const again = await stub.admit(request('t1', { retryOf: { attempt: first.grant.attempt, nodeId: 'node-a' } }))
    expect(again).toMatchObject({ ok: true, grant: { nodeId: 'node-b', attempt: 2 } })
  })

  it('places a task whose engine fell silent only on another node, and refuses when there is none', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    const first = await stub.admit(request('t1'))
    if (!first.ok) throw new Error('expected a grant')
    const retryOf = { attempt: first.grant.attempt, nodeId: 'node-a', elsewhereOnly: true }
    expect(await stub.admit(request('t1', { retryOf }))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
    // The refused retry left the attempt its slot, for the Worker to release.
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
    await stub.syncReplica('node-b', replica(poolId), [])
    expect(await stub.admit(request('t1', { retryOf }))).toMatchObject({ ok: true, grant: { nodeId: 'node-b', attempt: 2 } })
  })

  it('releases the same attempt twice without freeing a second slot', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 2 })
    await stub.syncReplica('node-a', replica(poolId, { slots: 2 }), [])
    await stub.admit(request('t1'))
    await stub.admit(request('t2'))
    await stub.release('t1', 1, 'completed')
    await stub.release('t1', 1, 'completed')
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
  })

  it('spreads tasks over equal replicas', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 4 })
    await stub.syncReplica('node-a', replica(poolId, { slots: 2 }), [])
    await stub.syncReplica('node-b', replica(poolId, { slots: 2 }), [])
    const nodes = new Set<string>()
    for (const taskId of ['t1', 't2']) {
      const result = await stub.admit(request(taskId))
      if (result.ok) nodes.add(result.grant.nodeId)
    }
    expect([...nodes].sort()).toEqual(['node-a', 'node-b'])
  })

  it('fails a queued task with queue_timeout when its wait deadline passes', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1'))
    // The pool's own alarm fires at the deadline; no look at the queue in between can be relied on under load.
    const waiting = stub.admit(request('t2', { maxWaitMs: 1 }))
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'queue_timeout' } })
    expect((await stub.status()).queueDepth).toBe(0)
  })

  it('takes a slot back when its grant outlives the run deadline', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1', { runDeadlineMs: 1 }))
    await expect.poll(async () => (await runDurableObjectAlarm(stub)) && (await stub.status()).replicas[0]?.busy).toBe(0)
  })

  it('fails a queued task after the pool queue_timeout_ms when the request names no wait', async () => {
    const { poolId, stub } = await freshPool({ queue_timeout_ms: 100 })
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit({ taskId: 't1', priority: undefined, apiKeyId: null })
    const waiting = stub.admit({ taskId: 't2', priority: undefined, apiKeyId: null })
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await expect.poll(() => runDurableObjectAlarm(stub)).toBe(true)
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'queue_timeout' } })
  })

  it('takes a slot back after the pool run_timeout_ms and tells the node that deadline', async () => {
    const { poolId, stub } = await freshPool({ run_timeout_ms: 100 })
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit({ taskId: 't1', priority: undefined, apiKeyId: null })).toMatchObject({ ok: true, grant: { runTimeoutMs: 100 } })
    await expect
      .poll(async () => {
        await runDurableObjectAlarm(stub)
        return (await stub.status()).replicas[0]?.busy
      })
      .toBe(0)
  })

  it('refuses a task while the pool is drained for maintenance, also after a restart of the object, until a preload lifts it', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit(request('t0'))).toMatchObject({ ok: true })
    const waiting = stub.admit(request('t1'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await stub.setMaintenance(true)
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'no_replica', message: expect.stringContaining('drained for maintenance') } })
    await stub.syncReplica('node-a', replica(poolId, { state: 'stopped' }), [])
    await evictDurableObject(stub)
    expect(await stub.admit(request('t1'))).toMatchObject({
      ok: false,
      error: { code: 'no_replica', message: expect.stringContaining('drained for maintenance') },
    })
    await stub.setMaintenance(false)
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await stub.admit(request('t2'))).toMatchObject({ ok: true, grant: { nodeId: 'node-a' } })
  })

  it('places no task on a cordoned node, also after a restart of the object, and takes it again once uncordoned', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 4 })
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.syncReplica('node-b', replica(poolId), [])
    await stub.cordon('node-a', true)
    await evictDurableObject(stub)
    expect(await stub.admit(request('t1'))).toMatchObject({ ok: true, grant: { nodeId: 'node-b' } })
    const waiting = stub.admit(request('t2'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await stub.cordon('node-a', false)
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await waiting).toMatchObject({ ok: true, grant: { taskId: 't2', nodeId: 'node-a' } })
  })

  it('takes no task onto a lost node and refuses new tasks when no replica is left', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1'))
    await stub.replicaLost('node-a')
    expect((await stub.status()).replicas[0]).toMatchObject({ nodeId: 'node-a', state: 'lost' })
    expect(await stub.admit(request('t2'))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('ends its queue at once with no_replica when the last replica is revoked or cordoned, not at the wait deadline', async () => {
    const revoked = await freshPool()
    await revoked.stub.syncReplica('node-a', replica(revoked.poolId), [])
    await revoked.stub.admit(request('t1'))
    const waiting = revoked.stub.admit(request('t2'))
    await expect.poll(async () => (await revoked.stub.status()).queueDepth).toBe(1)
    await revoked.stub.replicaLost('node-a', { revoked: true })
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'no_replica', message: expect.stringContaining('revoked') } })

    const cordoned = await freshPool()
    await cordoned.stub.syncReplica('node-a', replica(cordoned.poolId), [])
    await cordoned.stub.admit(request('t1'))
    const queued = cordoned.stub.admit(request('t2'))
    await expect.poll(async () => (await cordoned.stub.status()).queueDepth).toBe(1)
    await cordoned.stub.cordon('node-a', true)
    expect(await queued).toMatchObject({ ok: false, error: { code: 'no_replica', message: expect.stringContaining('cordoned') } })
  })

  it('ignores a report from a revoked node that arrives after its revocation', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.replicaLost('node-a', { revoked: true })
    await stub.syncReplica('node-a', replica(poolId), [])
    expect((await stub.status()).replicas).toEqual([])
    expect(await stub.admit(request('t1'))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('keeps its queue through the offline grace of a lost node', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1'))
    const waiting = stub.admit(request('t2'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await stub.replicaLost('node-a')
    expect((await stub.status()).queueDepth).toBe(1)
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.release('t1', 1, 'completed')
    expect(await waiting).toMatchObject({ ok: true, grant: { taskId: 't2', nodeId: 'node-a' } })
  })

  it('queues a task while its only replica failed and restarts, and refuses it once the breaker is open', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId, { state: 'failed' }), [])
    const waiting = stub.admit(request('t1'))
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(1)
    await stub.syncReplica('node-a', replica(poolId), [])
    expect(await waiting).toMatchObject({ ok: true, grant: { nodeId: 'node-a' } })

    const other = await freshPool()
    await other.stub.syncReplica('node-a', replica(other.poolId, { state: 'failed', breaker_open: true }), [])
    expect(await other.stub.admit(request('t1'))).toMatchObject({ ok: false, error: { code: 'no_replica' } })
  })

  it('gives back the slot of a task that its node no longer streams', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('t1'))
    await stub.syncReplica('node-a', replica(poolId, { slots_busy: 1 }), ['t1'])
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
    // Within the grace a report without it changes nothing: its dispatch may still be in flight.
    await stub.syncReplica('node-a', replica(poolId), [])
    expect((await stub.status()).replicas[0]?.busy).toBe(1)
    // Past the grace, it does.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec('UPDATE tasks SET granted_at = granted_at - ?', UNSTREAMED_GRANT_GRACE_MS + 1)
    })
    await stub.syncReplica('node-a', replica(poolId), [])
    expect((await stub.status()).replicas[0]?.busy).toBe(0)
  })

  it('buffers the usage of finished tasks and writes it to the registry in one batch', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 2 })
    await stub.syncReplica('node-a', replica(poolId, { slots: 2 }), [])
    await stub.admit(request('t1', { apiKeyId: 'key_a' }))
    await stub.admit(request('t2', { apiKeyId: 'key_b' }))
    await stub.release('t1', 1, 'completed', { usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }, ttftMs: 10 })
    await stub.release('t2', 1, 'completed', { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, ttftMs: 10 })
    const db = registryFor(env)
    const rows = async () => db.select().from(usage).where(eq(usage.poolId, poolId)).orderBy(usage.taskId)
    expect(await rows()).toEqual([])
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(`UPDATE meta SET value = 0 WHERE key = 'usage_flush_at'`)
    })
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    expect((await rows()).map((r) => [r.taskId, r.apiKeyId, r.promptTokens, r.completionTokens])).toEqual([
      ['t1', 'key_a', 3, 5],
      ['t2', 'key_b', 1, 2],
    ])
  })

  it('takes back at the first report a grant from before the pool restarted that its node does not stream', async () => {
    const { poolId, stub } = await freshPool()
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('ghost'))
    // A deploy restarts the object; the Worker request that held the grant died with it.
    await evictDurableObject(stub)
    await stub.syncReplica('node-a', replica(poolId), [])
    expect((await stub.status()).replicas[0]?.busy).toBe(0)
  })

  it('after a restart, grants a queued task whose Worker asks again, and drops one whose Worker is gone', async () => {
    const { poolId, stub } = await freshPool({ queue_capacity: 4 })
    await stub.syncReplica('node-a', replica(poolId), [])
    await stub.admit(request('running'))
    const rejoining = stub.admit(request('rejoining')).catch(() => null)
    const orphan = stub.admit(request('orphan')).catch(() => null)
    await expect.poll(async () => (await stub.status()).queueDepth).toBe(2)
    // Eviction would wait for the waiting admit calls; a crash does not.
    await crashDurableObject(stub)
    await Promise.all([rejoining, orphan])
    const restarted = env.POOLS.getByName(poolId)
    const again = restarted.admit(request('rejoining'))
    await restarted.release('running', 1, 'completed')
    expect(await again).toMatchObject({ ok: true, grant: { taskId: 'rejoining' } })
    // The orphan is never granted; once its Worker had time to come back, it is dropped.
    expect((await restarted.status()).queueDepth).toBe(1)
    await expect
      .poll(
        async () => {
          await runDurableObjectAlarm(restarted)
          return (await restarted.status()).queueDepth
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(0)
  })
})
