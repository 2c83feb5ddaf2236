import { describe, expect, it } from 'vitest'
import { backoffCeilingMs, backoffDelayMs } from '../../node-agent/supervisor/backoff.ts'
import { CircuitBreaker } from '../../node-agent/supervisor/circuit-breaker.ts'

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

describe('circuit breaker', () => {
  it('opens after 3 crashes within the window', () => {
    const breaker = new CircuitBreaker({ maxCrashes: 3, windowMs: 1_000 })
    expect(breaker.record(0)).toEqual({ crashes: 1, open: false })
    expect(breaker.record(100)).toEqual({ crashes: 2, open: false })
    expect(breaker.record(200)).toEqual({ crashes: 3, open: true })
    expect(breaker.open).toBe(true)
  })

  it('forgets crashes that fell out of the window', () => {
    const breaker = new CircuitBreaker({ maxCrashes: 3, windowMs: 1_000 })
    breaker.record(0)
    breaker.record(500)
    expect(breaker.record(1_200)).toEqual({ crashes: 2, open: false })
    expect(breaker.recentCrashes(2_000)).toBe(1)
  })

  it('stays open however much time passes, until reset', () => {
    const breaker = new CircuitBreaker({ maxCrashes: 1, windowMs: 10 })
    breaker.record(0)
    expect(breaker.open).toBe(true)
    expect(breaker.recentCrashes(1_000_000)).toBe(0)
    expect(breaker.open).toBe(true)
    breaker.reset()
    expect(breaker.open).toBe(false)
    expect(breaker.record(5)).toEqual({ crashes: 1, open: true })
  })
})
