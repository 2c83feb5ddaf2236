import { describe, expect, it } from 'vitest'
import { POOL_LIST_REFRESH_MS, PoolNames } from '../../../control-plane/registry/pool-names.ts'

describe('PoolNames', () => {
  it('answers made-up names from one read, and finds a pool registered after it once that read is POOL_LIST_REFRESH_MS old', async () => {
    const names = new PoolNames()
    const registry = ['chat']
    let reads = 0
    const readIds = async () => {
      reads += 1
      return [...registry]
    }
    expect(await names.lookup('chat', readIds, Date.now())).toBe('known')
    const madeUp = await Promise.all(Array.from({ length: 200 }, (_, i) => names.lookup(`made-up-${i}`, readIds, Date.now())))
    expect(new Set(madeUp)).toEqual(new Set(['unknown']))
    expect(reads, 'the made-up names are answered from the read the known name made').toBe(1)
    registry.push('new-pool')
    const startedAt = Date.now()
    expect(await names.lookup('new-pool', readIds, startedAt + POOL_LIST_REFRESH_MS)).toBe('known')
    expect(Date.now() - startedAt).toBeLessThanOrEqual(POOL_LIST_REFRESH_MS + 50)
    expect(reads).toBe(2)
  })

  it('is unsure when the registry cannot be read, so that the pool object judges', async () => {
    const names = new PoolNames()
    expect(await names.lookup('chat', () => Promise.reject(new Error('registry down')), Date.now())).toBe('unsure')
  })
})
