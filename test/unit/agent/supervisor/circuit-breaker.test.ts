import { describe, expect, it } from 'vitest'
import { CircuitBreaker } from '../../../../node-agent/supervisor/circuit-breaker.ts'

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
