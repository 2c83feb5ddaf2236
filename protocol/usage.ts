import { z } from 'zod'
import { PoolId } from './agent-frames.ts'

/** A day (`2026-11-01`, midnight UTC) or an instant with its offset (`2026-11-01T12:00:00Z`). */
const Instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })], { error: 'expected a date (2026-11-01) or an ISO 8601 date-time with offset' })

export const UsageGroupBy = z.enum(['key', 'pool', 'day'])
export type UsageGroupBy = z.infer<typeof UsageGroupBy>

const UsageFilters = {
  /** Inclusive. */
  from: Instant.optional(),
  /** Exclusive. */
  to: Instant.optional(),
  pool: PoolId.optional(),
}

function fromBeforeTo(query: { from?: string | undefined; to?: string | undefined }, ctx: z.RefinementCtx): void {
  if (query.from && query.to && Date.parse(query.from) >= Date.parse(query.to)) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be later than `from`' })
  }
}

/** `GET /v2/usage`: every key's usage, filtered and grouped. Admin. */
export const UsageQuery = z
  .strictObject({
    ...UsageFilters,
    /** An API key id (`key_…`). */
    key: z.string().min(1).max(128).optional(),
    group_by: UsageGroupBy.optional(),
  })
  .superRefine(fromBeforeTo)
export type UsageQuery = z.infer<typeof UsageQuery>

/** `GET /v2/usage/self`: the calling API key's own usage. */
export const UsageSelfQuery = z.strictObject({ ...UsageFilters, group_by: UsageGroupBy.exclude(['key']).optional() }).superRefine(fromBeforeTo)
export type UsageSelfQuery = z.infer<typeof UsageSelfQuery>

export const UsageTotals = z.object({
  /** Finished tasks whose engine reported usage. */
  requests: z.int(),
  prompt_tokens: z.int(),
  completion_tokens: z.int(),
  total_tokens: z.int(),
})
export type UsageTotals = z.infer<typeof UsageTotals>

export const UsageReport = z.object({
  from: z.string().nullable(),
  to: z.string().nullable(),
  key: z.string().nullable(),
  pool: z.string().nullable(),
  group_by: UsageGroupBy.nullable(),
  totals: UsageTotals,
  /** One per key id (null: the bootstrap admin token), pool id or UTC day, most requests first for keys and pools, in order for days. */
  groups: z.array(UsageTotals.extend({ group: z.string().nullable() })),
})
export type UsageReport = z.infer<typeof UsageReport>
