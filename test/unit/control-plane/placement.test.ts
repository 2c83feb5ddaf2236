import { describe, expect, it } from 'vitest'
import { AffinityTable, availability, pickReplica, placeTask } from '../../../control-plane/pool/placement.ts'
import type { PlacementCandidate } from '../../../control-plane/pool/placement.ts'

function candidate(nodeId: string, overrides: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return { nodeId, state: 'ready', slots: 2, busy: 0, breakerOpen: false, recentFailures: 0, lastGrantedAt: 0, ...overrides }
}

describe('pickReplica', () => {
  it('takes only ready replicas with a free slot', () => {
    expect(pickReplica([candidate('a', { state: 'starting' }), candidate('b', { busy: 2 }), candidate('c', { state: 'lost' })])).toBeNull()
    expect(pickReplica([candidate('a', { state: 'draining' }), candidate('b', { busy: 1 })])?.nodeId).toBe('b')
  })

  it('prefers the most free slots, then the fewest recent failures, then the one granted longest ago', () => {
    expect(pickReplica([candidate('a', { busy: 1 }), candidate('b')])?.nodeId).toBe('b')
    expect(pickReplica([candidate('a', { recentFailures: 2 }), candidate('b', { recentFailures: 1 })])?.nodeId).toBe('b')
    expect(pickReplica([candidate('a', { lastGrantedAt: 20 }), candidate('b', { lastGrantedAt: 10 })])?.nodeId).toBe('b')
  })

  it('breaks a full tie by node id, so placement does not depend on row order', () => {
    expect(pickReplica([candidate('b'), candidate('a')])?.nodeId).toBe('a')
    expect(pickReplica([candidate('a'), candidate('b')])?.nodeId).toBe('a')
  })
})

describe('availability', () => {
  it('serves when a replica is ready, starting, draining, or failed and restarting', () => {
    for (const state of ['ready', 'starting', 'draining', 'failed'] as const) expect(availability([candidate('a', { state })])).toBe('serving')
  })

  it('needs a preload when the only replicas are stopped', () => {
    expect(availability([candidate('a', { state: 'stopped' }), candidate('b', { state: 'lost' })])).toBe('needs_preload')
  })

  it('serves nothing when every replica is lost or failed with its breaker open', () => {
    expect(availability([candidate('a', { state: 'lost' }), candidate('b', { state: 'failed', breakerOpen: true })])).toBe('none')
    expect(availability([])).toBe('none')
  })
})

describe('placeTask', () => {
  it('sends a session back to the replica that served it last while that one has a free slot', () => {
    const table = new AffinityTable()
    table.served('session-1', 'b')
    expect(placeTask([candidate('a'), candidate('b', { busy: 1 })], 'session-1', table)?.nodeId).toBe('b')
    // Full: the least loaded takes it rather than the task waiting.
    expect(placeTask([candidate('a'), candidate('b', { busy: 2 })], 'session-1', table)?.nodeId).toBe('a')
  })

  it('places a session it has not seen by hashing, the same replica whatever the load or the row order', () => {
    const table = new AffinityTable()
    const first = placeTask([candidate('a'), candidate('b'), candidate('c')], 'session-x', table)?.nodeId
    expect(placeTask([candidate('c', { busy: 1 }), candidate('a', { busy: 1 }), candidate('b', { busy: 1 })], 'session-x', table)?.nodeId).toBe(first)
    const spread = new Set(Array.from({ length: 40 }, (_, i) => placeTask([candidate('a'), candidate('b'), candidate('c')], `s${i}`, table)?.nodeId))
    expect(spread.size).toBe(3)
  })

  it('places a task without a session on the least loaded replica', () => {
    expect(placeTask([candidate('a', { busy: 1 }), candidate('b')], undefined, new AffinityTable())?.nodeId).toBe('b')
  })
})
