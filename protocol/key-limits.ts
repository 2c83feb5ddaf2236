import { z } from 'zod'

/** Calendar periods (UTC) a token budget can run over. */
export const BudgetPeriod = z.enum(['day', 'week', 'month'])
export type BudgetPeriod = z.infer<typeof BudgetPeriod>

export const TokenBudget = z.strictObject({
  tokens: z.int().min(1).max(1e12),
  period: BudgetPeriod,
})
export type TokenBudget = z.infer<typeof TokenBudget>

/**
 * What one API key may use. A field left out falls back to the pool's default (`key_limits` of
 * its policy); `null` means no limit, whatever the pool says. Tokens are prompt plus completion,
 * counted when a task ends.
 */
export const KeyLimits = z.strictObject({
  requests_per_minute: z.int().min(1).max(1_000_000).nullable().optional(),
  tokens_per_minute: z.int().min(1).max(1e10).nullable().optional(),
  max_concurrent: z.int().min(1).max(100_000).nullable().optional(),
  token_budget: TokenBudget.nullable().optional(),
})
export type KeyLimits = z.infer<typeof KeyLimits>

/** Which limit turned a request away; each is its own error code. */
export const KeyLimitCode = z.enum(['rate_limit_rpm', 'rate_limit_tpm', 'rate_limit_concurrency', 'token_budget_exhausted'])
export type KeyLimitCode = z.infer<typeof KeyLimitCode>

/** The limits that apply to a key's request to a pool: the key's own, else the pool's defaults. */
export function effectiveLimits(own: KeyLimits, poolDefaults: KeyLimits | undefined): KeyLimits {
  const merged: KeyLimits = { ...poolDefaults }
  for (const [field, value] of Object.entries(own)) if (value !== undefined) Object.assign(merged, { [field]: value })
  return merged
}

/** Whether any limit is set, so that a request must be counted at all. */
export function limitsAny(limits: KeyLimits): boolean {
  return Object.values(limits).some((value) => value !== null && value !== undefined)
}
