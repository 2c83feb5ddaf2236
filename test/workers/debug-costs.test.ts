import { describe, expect, it } from 'vitest'
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
