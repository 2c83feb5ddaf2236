import { describe, expect, it } from 'vitest'
import { backoffCeilingMs, backoffDelayMs } from '../../../../node-agent/supervisor/backoff.ts'

describe('backoff', () => {
  it('doubles the ceiling with each attempt up to the cap', () => {
    const ceilings = [0, 1, 2, 3, 4, 5].map((attempt) => backoffCeilingMs({ attempt, initialMs: 100, maxMs: 1_000 }))
    expect(ceilings).toEqual([100, 200, 400, 800, 1_000, 1_000])
  })

  it('draws the delay uniformly between zero and the ceiling (full jitter)', () => {
    expect(backoffDelayMs({ attempt: 3, initialMs: 100, maxMs: 10_000, random: () => 0 })).toBe(0)
    expect(backoffDelayMs({ attempt: 3, initialMs: 100, maxMs: 10_000, random: () => 0.5 })).toBe(400)
    expect(backoffDelayMs({ attempt: 3, initialMs: 100, maxMs: 10_000, random: () => 1 })).toBe(800)
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelayMs({ attempt: 2, initialMs: 100, maxMs: 10_000 })
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThanOrEqual(400)
    }
  })
})
