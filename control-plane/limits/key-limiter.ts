import { z } from 'zod'
import { refusal } from '../../protocol/index.ts'
import type { KeyLimitCode, KeyLimits, Refusal } from '../../protocol/index.ts'
import { periodBounds } from './budget-period.ts'
import { rateLimitHeaders } from './rate-limit-headers.ts'
import { Bucket, msUntil, refill } from './token-bucket.ts'

/** What a key has used, as its ApiKeyObject stores it. */
export const LimiterState = z.object({
  requests: Bucket.nullable(),
  tokens: Bucket.nullable(),
  budget: z.object({ periodStart: z.number(), used: z.number() }).nullable(),
  /** Tasks holding one of the key's concurrent places, with when the place is given up unasked. */
  leases: z.record(z.string(), z.number()),
})
export type LimiterState = z.infer<typeof LimiterState>

export const EMPTY_LIMITER_STATE: LimiterState = { requests: null, tokens: null, budget: null, leases: {} }

/** A concurrency place is held at most this long past what its task could take. */
const LEASE_SLACK_MS = 60_000

export type LimitDecision = { ok: true; headers: Record<string, string> } | Refusal<KeyLimitCode>

/** The state at `now`: buckets refilled, the budget of the current period, expired leases gone. */
function current(state: LimiterState, limits: KeyLimits, now: number): LimiterState {
  const leases = Object.fromEntries(Object.entries(state.leases).filter(([, until]) => until > now))
  const budgetStart = limits.token_budget ? periodBounds(limits.token_budget.period, now).start : null
  return {
    requests: limits.requests_per_minute ? refill(state.requests, limits.requests_per_minute, now) : null,
    tokens: limits.tokens_per_minute ? refill(state.tokens, limits.tokens_per_minute, now) : null,
    budget: budgetStart === null ? null : state.budget?.periodStart === budgetStart ? state.budget : { periodStart: budgetStart, used: 0 },
    leases,
  }
}

/** A limit the request would cross, and when it would let the request through. */
interface Crossed {
  code: KeyLimitCode
  message: string
  waitMs: number
}

function crossedLimit(code: KeyLimitCode, message: string, waitMs: number): Crossed {
  return { code, message, waitMs }
}

/** The first limit the request would cross, or null when it may go. */
function firstCrossed(state: LimiterState, limits: KeyLimits, now: number): Crossed | null {
  const { token_budget: budget, max_concurrent: concurrent, requests_per_minute: rpm, tokens_per_minute: tpm } = limits
  if (budget && state.budget && state.budget.used >= budget.tokens) {
    const { end } = periodBounds(budget.period, now)
    return crossedLimit(
      'token_budget_exhausted',
      `this API key used its budget of ${budget.tokens} tokens for the ${budget.period}; it renews at ${new Date(end).toISOString()}`,
      end - now,
    )
  }
  if (concurrent && Object.keys(state.leases).length >= concurrent) {
    return crossedLimit('rate_limit_concurrency', `this API key already runs ${concurrent} tasks at once, its limit (max_concurrent)`, 1_000)
  }
  if (rpm && state.requests && state.requests.level < 1) {
    return crossedLimit('rate_limit_rpm', `this API key is over its limit of ${rpm} requests per minute`, msUntil(state.requests, rpm, 1))
  }
  if (tpm && state.tokens && state.tokens.level <= 0) {
    return crossedLimit('rate_limit_tpm', `this API key is over its limit of ${tpm} tokens per minute`, msUntil(state.tokens, tpm, 1))
  }
  return null
}

/**
 * Counts a new task against the key's limits, or refuses it naming the limit it would cross. A
 * task already counted (a repeated call) is let through again without counting twice.
 */
export function acquire(
  state: LimiterState,
  limits: KeyLimits,
  { taskId, now, holdMs }: { taskId: string; now: number; holdMs: number },
): { state: LimiterState; decision: LimitDecision } {
  const at = current(state, limits, now)
  if (at.leases[taskId] !== undefined) return { state: at, decision: { ok: true, headers: rateLimitHeaders(at, limits, now) } }
  const crossed = firstCrossed(at, limits, now)
  if (crossed) {
    const retryAfterSeconds = Math.max(1, Math.ceil(crossed.waitMs / 1000))
    return { state: at, decision: refusal(crossed.code, crossed.message, { retryAfterSeconds, headers: rateLimitHeaders(at, limits, now) }) }
  }
  const next: LimiterState = {
    ...at,
    requests: at.requests ? { ...at.requests, level: at.requests.level - 1 } : null,
    leases: limits.max_concurrent ? { ...at.leases, [taskId]: now + holdMs + LEASE_SLACK_MS } : at.leases,
  }
  return { state: next, decision: { ok: true, headers: rateLimitHeaders(next, limits, now) } }
}

/** The task ended (or never ran): its concurrent place is free and the tokens it used are spent. */
export function settle(state: LimiterState, limits: KeyLimits, { taskId, tokens, now }: { taskId: string; tokens: number; now: number }): LimiterState {
  const at = current(state, limits, now)
  const { [taskId]: _released, ...leases } = at.leases
  return {
    ...at,
    tokens: at.tokens ? { ...at.tokens, level: at.tokens.level - tokens } : null,
    budget: at.budget ? { ...at.budget, used: at.budget.used + tokens } : null,
    leases,
  }
}
