import { describe, expect, it } from 'vitest'
import { EMPTY_LIMITER_STATE, acquire, settle } from '../../../control-plane/limits/key-limiter.ts'
import type { LimiterState } from '../../../control-plane/limits/key-limiter.ts'
import { periodBounds } from '../../../control-plane/limits/budget-period.ts'
import { resetIn } from '../../../control-plane/limits/rate-limit-headers.ts'
import type { KeyLimits } from '../../../protocol/index.ts'
import { effectiveLimits } from '../../../protocol/index.ts'

const HOLD_MS = 60_000

/** Admits `n` tasks at `now`, returning the last decision and the state after. */
function admitMany(limits: KeyLimits, n: number, now: number, start: LimiterState = EMPTY_LIMITER_STATE) {
  let state = start
  let decision: ReturnType<typeof acquire>['decision'] | undefined
  for (let i = 0; i < n; i++) ({ state, decision } = acquire(state, limits, { taskId: `t${now}-${i}`, now, holdMs: HOLD_MS }))
  if (!decision) throw new Error('no task admitted')
  return { state, decision }
}

describe('key limits', () => {
  it('refuses the request past the requests per minute with rate_limit_rpm, and lets one through once the bucket refilled', () => {
    const limits = { requests_per_minute: 3 }
    const { state, decision } = admitMany(limits, 3, 0)
    expect(decision).toMatchObject({
      ok: true,
      headers: { 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '60s' },
    })
    const refused = acquire(state, limits, { taskId: 'late', now: 1_000, holdMs: HOLD_MS }).decision
    expect(refused).toMatchObject({ ok: false, error: { code: 'rate_limit_rpm', retryAfterSeconds: 19 } })
    expect(acquire(state, limits, { taskId: 'later', now: 20_000, holdMs: HOLD_MS }).decision.ok).toBe(true)
  })

  it('counts tokens after the task and refuses with rate_limit_tpm while the key is over', () => {
    const limits = { tokens_per_minute: 100 }
    const { state } = admitMany(limits, 1, 0)
    const spent = settle(state, limits, { taskId: 't0-0', tokens: 150, now: 0 })
    expect(acquire(spent, limits, { taskId: 'next', now: 1_000, holdMs: HOLD_MS }).decision).toMatchObject({
      ok: false,
      error: { code: 'rate_limit_tpm', retryAfterSeconds: 30 },
    })
    expect(acquire(spent, limits, { taskId: 'next', now: 31_000, holdMs: HOLD_MS }).decision.ok).toBe(true)
  })

  it('holds a concurrent place until the task settles, or until its lease runs out', () => {
    const limits = { max_concurrent: 2 }
    const { state } = admitMany(limits, 2, 0)
    expect(acquire(state, limits, { taskId: 'third', now: 10, holdMs: HOLD_MS }).decision).toMatchObject({
      ok: false,
      error: { code: 'rate_limit_concurrency' },
    })
    const freed = settle(state, limits, { taskId: 't0-0', tokens: 0, now: 10 })
    expect(acquire(freed, limits, { taskId: 'third', now: 10, holdMs: HOLD_MS }).decision).toMatchObject({
      ok: true,
      headers: { 'x-ratelimit-remaining-concurrency': '0' },
    })
    // A Worker that died never settles: the place comes back after the longest the task could take.
    expect(acquire(state, limits, { taskId: 'third', now: 10 * HOLD_MS, holdMs: HOLD_MS }).decision.ok).toBe(true)
  })

  it('counts a repeated call for the same task once', () => {
    const limits = { max_concurrent: 1, requests_per_minute: 1 }
    const first = acquire(EMPTY_LIMITER_STATE, limits, { taskId: 'same', now: 0, holdMs: HOLD_MS })
    expect(acquire(first.state, limits, { taskId: 'same', now: 1, holdMs: HOLD_MS }).decision.ok).toBe(true)
  })

  it('refuses with token_budget_exhausted until the period renews', () => {
    const limits: KeyLimits = { token_budget: { tokens: 1_000, period: 'day' } }
    const noon = Date.UTC(2026, 11, 1, 12)
    const { state } = admitMany(limits, 1, noon)
    const spent = settle(state, limits, { taskId: `t${noon}-0`, tokens: 1_000, now: noon })
    expect(acquire(spent, limits, { taskId: 'more', now: noon, holdMs: HOLD_MS }).decision).toMatchObject({
      ok: false,
      error: { code: 'token_budget_exhausted', retryAfterSeconds: 12 * 3_600 },
    })
    expect(acquire(spent, limits, { taskId: 'more', now: Date.UTC(2026, 11, 2, 0, 1), holdMs: HOLD_MS }).decision.ok).toBe(true)
  })

  it('takes a pool default for a limit the key leaves out, and none where the key says null', () => {
    expect(effectiveLimits({ max_concurrent: 4, requests_per_minute: null }, { requests_per_minute: 10, tokens_per_minute: 500 })).toEqual({
      max_concurrent: 4,
      requests_per_minute: null,
      tokens_per_minute: 500,
    })
  })
})

describe('periodBounds', () => {
  it('runs days, weeks from Monday, and calendar months in UTC', () => {
    const wednesday = Date.UTC(2026, 11, 2, 15)
    expect(periodBounds('day', wednesday)).toEqual({ start: Date.UTC(2026, 11, 2), end: Date.UTC(2026, 11, 3) })
    expect(periodBounds('week', wednesday)).toEqual({ start: Date.UTC(2026, 10, 30), end: Date.UTC(2026, 11, 7) })
    expect(periodBounds('month', wednesday)).toEqual({ start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) })
  })
})

describe('resetIn', () => {
  it('writes waits as OpenAI does', () => {
    expect(resetIn(250)).toBe('250ms')
    expect(resetIn(1_500)).toBe('1.5s')
    expect(resetIn(60_000)).toBe('60s')
  })
})
