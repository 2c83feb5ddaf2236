import { describe, expect, it } from 'vitest'
import type { PlacementCandidate } from '../../../control-plane/pool/placement.ts'
import { OFFLINE_GRACE_MS, graceEndsAt, strandedRefusal } from '../../../control-plane/pool/stranded.ts'
import type { StrandedView } from '../../../control-plane/pool/stranded.ts'

const NOW = 1_000_000

function candidate(nodeId: string, overrides: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return { nodeId, state: 'ready', slots: 2, busy: 0, breakerOpen: false, recentFailures: 0, lastGrantedAt: 0, ...overrides }
}

function view(overrides: Partial<StrandedView> = {}): StrandedView {
  return { poolId: 'p', placeable: [candidate('a')], lostAt: new Map(), cannotStart: () => null, now: NOW, ...overrides }
}

describe('strandedRefusal', () => {
  it('keeps the queue while a replica serves or will without anyone acting', () => {
    for (const state of ['ready', 'starting', 'draining'] as const) expect(strandedRefusal(view({ placeable: [candidate('a', { state })] }))).toBeNull()
    // Failed but restarting (breaker closed): still waits, as a restart is only a pause.
    expect(strandedRefusal(view({ placeable: [candidate('a', { state: 'failed' })] }))).toBeNull()
  })

  it('ends the queue when every node that served the pool was revoked', () => {
    expect(strandedRefusal(view({ placeable: [] }))?.error).toMatchObject({ code: 'no_replica', message: expect.stringContaining('revoked') })
  })

  it('waits for a lost node through the offline grace, then ends the queue', () => {
    const lost = [candidate('a', { state: 'lost' })]
    const lostAt = new Map([['a', NOW - OFFLINE_GRACE_MS + 1]])
    expect(strandedRefusal(view({ placeable: lost, lostAt }))).toBeNull()
    expect(strandedRefusal(view({ placeable: lost, lostAt, now: NOW + 1 }))?.error).toMatchObject({
      code: 'no_replica',
      message: expect.stringContaining('failed or lost'),
    })
  })

  it('ends the queue when the only replica left has its breaker open', () => {
    expect(strandedRefusal(view({ placeable: [candidate('a', { state: 'failed', breakerOpen: true })] }))?.error.code).toBe('no_replica')
  })

  it('waits for a stopped replica the pool may start, and ends the queue with the reason when none may (cordons)', () => {
    const stopped = [candidate('a', { state: 'stopped' })]
    expect(strandedRefusal(view({ placeable: stopped }))).toBeNull()
    expect(strandedRefusal(view({ placeable: stopped, cannotStart: () => 'every stopped replica is on a cordoned node' }))?.error).toEqual({
      code: 'no_replica',
      message: 'every stopped replica is on a cordoned node',
    })
  })

  it('lets one serving replica elsewhere keep the queue whatever the others are', () => {
    const mixed = [candidate('a', { state: 'lost' }), candidate('b', { state: 'failed', breakerOpen: true }), candidate('c')]
    expect(strandedRefusal(view({ placeable: mixed, lostAt: new Map([['a', 0]]) }))).toBeNull()
  })
})

describe('graceEndsAt', () => {
  it('is the earliest grace still running, or null', () => {
    expect(graceEndsAt(new Map(), NOW)).toBeNull()
    expect(graceEndsAt(new Map([['a', NOW - OFFLINE_GRACE_MS]]), NOW)).toBeNull()
    expect(
      graceEndsAt(
        new Map([
          ['a', NOW - 10],
          ['b', NOW - 20],
        ]),
        NOW,
      ),
    ).toBe(NOW - 20 + OFFLINE_GRACE_MS)
  })
})
