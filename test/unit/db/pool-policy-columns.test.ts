import { getTableColumns } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import { policyColumnOf, policyColumns, policyOf } from '../../../control-plane/registry/pools.ts'
import { pools } from '../../../db/schema.ts'
import type { PoolRow } from '../../../db/schema.ts'
import { DEFAULT_POOL_POLICY, PoolPolicy } from '../../../protocol/index.ts'

const FIELDS = Object.keys(PoolPolicy.shape)

describe('the pool policy in the registry', () => {
  it('has a column for every policy field, named by one rule and mapped once', () => {
    const columns = getTableColumns(pools)
    expect(Object.keys(policyColumns(DEFAULT_POOL_POLICY)).sort()).toEqual(FIELDS.map(policyColumnOf).sort())
    for (const field of FIELDS) expect(Object.keys(columns)).toContain(policyColumnOf(field))
  })

  it("takes each column's default from the policy schema's default, or null for the fields whose default is the schema's", () => {
    const columns = getTableColumns(pools)
    for (const [field, value] of Object.entries(DEFAULT_POOL_POLICY)) {
      const column = Object.entries(columns).find(([name]) => name === policyColumnOf(field))?.[1]
      if (column?.notNull) expect({ field, default: column.default }).toEqual({ field, default: value })
      else expect({ field, default: column?.default }).toEqual({ field, default: undefined })
    }
  })

  it('reads back what it writes, and a null column as its default', () => {
    const base: PoolRow = {
      id: 'p',
      engine: 'openai',
      createdAt: new Date(0),
      updatedAt: null,
      queueCapacity: 64,
      preloadMode: 'eager',
      idleDrainMs: null,
      defaultPriority: 'interactive',
      firstTokenTimeoutMs: 60_000,
      idleTimeoutMs: 30_000,
      batchAgingMs: null,
      batchSlotShare: 1,
      keyLimits: {},
      queueTimeoutMs: 120_000,
      runTimeoutMs: 600_000,
      scaleOutWaitMs: 10_000,
    }
    expect(policyOf(base)).toEqual(DEFAULT_POOL_POLICY)
    const custom = PoolPolicy.parse({ queue_capacity: 3, idle_drain_ms: 60_000, batch_aging_ms: 5, batch_slot_share: 0.5, key_limits: { max_concurrent: 2 } })
    expect(policyOf({ ...base, queueCapacity: 3, idleDrainMs: 60_000, batchAgingMs: 5, batchSlotShare: 0.5, keyLimits: { max_concurrent: 2 } })).toEqual(custom)
    expect(policyColumns({ queue_capacity: 3 })).toMatchObject({ queueCapacity: 3, preloadMode: undefined })
  })
})
