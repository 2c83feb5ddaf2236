import { describe, expect, it } from 'vitest'
import { changedReplicas } from '../../../control-plane/node/replica-changes.ts'
import type { ReplicaReport } from '../../../protocol/index.ts'

function report(pool: string, overrides: Partial<ReplicaReport> = {}): ReplicaReport {
  return { pool, engine: 'llamacpp', state: 'ready', slots: 2, slots_busy: 0, engine_version: 'b5000', reason: null, breaker_open: false, ...overrides }
}

describe('changedReplicas', () => {
  it('ignores busy slots, which change with every task', () => {
    expect(changedReplicas([report('a')], [report('a', { slots_busy: 2 })])).toEqual([])
  })

  it('returns the replicas whose state, slots, engine version or reason changed, and new ones', () => {
    const stored = [report('a'), report('b'), report('c'), report('d')]
    const reported = [
      report('a', { state: 'draining' }),
      report('b', { slots: 4 }),
      report('c', { engine_version: 'b5001' }),
      report('d', { reason: 'x' }),
      report('e'),
    ]
    expect(changedReplicas(stored, reported).map((r) => r.pool)).toEqual(['a', 'b', 'c', 'd', 'e'])
  })
})
