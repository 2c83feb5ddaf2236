import { describe, expect, it } from 'vitest'
import { PoolCeilingResult } from '../../protocol/index.ts'
import { call, freshPool } from './support.ts'

async function costs(): Promise<{ entry_points: Record<string, number>; storage_writes: number }> {
  const response = await call('GET', '/v2/debug/costs')
  expect(response.status).toBe(200)
  return response.json()
}

describe('GET /v2/debug/costs', () => {
  it('counts Durable Object entry points and storage writes, for admins only', async () => {
    expect((await call('GET', '/v2/debug/costs', { token: null })).status).toBe(401)
    const before = await costs()
    await freshPool({}, 'costs')
    const after = await costs()
    expect((after.entry_points['PoolObject.setPolicy'] ?? 0) - (before.entry_points['PoolObject.setPolicy'] ?? 0)).toBe(1)
    expect(after.storage_writes).toBeGreaterThan(before.storage_writes)
  })
})

describe('POST /v2/debug/pool-ceiling', () => {
  it('runs every admit-and-release cycle against a scratch pool and answers the rate, for admins only', async () => {
    expect((await call('POST', '/v2/debug/pool-ceiling', { token: null, body: {} })).status).toBe(401)
    const response = await call('POST', '/v2/debug/pool-ceiling', { body: { tasks: 40, concurrency: 4, nodes: 2, slots: 2 } })
    expect(response.status).toBe(200)
    const result = PoolCeilingResult.parse(await response.json())
    expect(result).toMatchObject({ tasks: 40, concurrency: 4, nodes: 2, slots: 2, errors: 0 })
    expect(result.tasks_per_second).toBeGreaterThan(0)
    expect((await call('POST', '/v2/debug/pool-ceiling', { body: { tasks: 0 } })).status).toBe(400)
  })
})
