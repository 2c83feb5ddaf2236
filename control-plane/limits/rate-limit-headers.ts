import type { KeyLimits } from '../../protocol/index.ts'
import type { LimiterState } from './key-limiter.ts'
import { periodBounds } from './budget-period.ts'
import { msUntil } from './token-bucket.ts'

/** A wait as OpenAI writes it in `x-ratelimit-reset-*`: `250ms`, `1.5s`, `60s`. */
export function resetIn(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.ceil(ms))}ms`
  return `${Number((ms / 1000).toFixed(3))}s`
}

/**
 * OpenAI's `x-ratelimit-*` headers for the limits that are set: limit, remaining and time until
 * the bucket is full again, for requests and tokens per minute; llorch adds the concurrency and
 * the token budget the same way.
 */
export function rateLimitHeaders(state: LimiterState, limits: KeyLimits, now: number): Record<string, string> {
  const headers: Record<string, string> = {}
  const per = (name: string, limit: number, remaining: number, resetMs: number) => {
    headers[`x-ratelimit-limit-${name}`] = String(limit)
    headers[`x-ratelimit-remaining-${name}`] = String(Math.max(0, Math.floor(remaining)))
    headers[`x-ratelimit-reset-${name}`] = resetIn(resetMs)
  }
  const { requests_per_minute: rpm, tokens_per_minute: tpm, max_concurrent: concurrent, token_budget: budget } = limits
  if (rpm && state.requests) per('requests', rpm, state.requests.level, msUntil(state.requests, rpm, rpm))
  if (tpm && state.tokens) per('tokens', tpm, state.tokens.level, msUntil(state.tokens, tpm, tpm))
  if (concurrent) {
    headers['x-ratelimit-limit-concurrency'] = String(concurrent)
    headers['x-ratelimit-remaining-concurrency'] = String(Math.max(0, concurrent - Object.keys(state.leases).length))
  }
  if (budget && state.budget) per('budget-tokens', budget.tokens, budget.tokens - state.budget.used, periodBounds(budget.period, now).end - now)
  return headers
}
