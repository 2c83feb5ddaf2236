import { and, eq, gte, lt, sql } from 'drizzle-orm'
import type { SQL } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { usage } from '../../db/schema.ts'
import type { UsageGroupBy, UsageReport, UsageTotals } from '../../protocol/index.ts'

export interface UsageFilter {
  from?: string | undefined
  to?: string | undefined
  key?: string | undefined
  pool?: string | undefined
  groupBy?: UsageGroupBy | undefined
}

const GROUP_COLUMN = {
  key: sql<string | null>`${usage.apiKeyId}`,
  pool: sql<string | null>`${usage.poolId}`,
  day: sql<string | null>`strftime('%Y-%m-%d', ${usage.createdAt} / 1000, 'unixepoch')`,
} as const satisfies Record<UsageGroupBy, SQL<string | null>>

const totalsColumns = {
  requests: sql<number>`count(*)`.mapWith(Number),
  prompt_tokens: sql<number>`coalesce(sum(${usage.promptTokens}), 0)`.mapWith(Number),
  completion_tokens: sql<number>`coalesce(sum(${usage.completionTokens}), 0)`.mapWith(Number),
}

function withTotal(row: Omit<UsageTotals, 'total_tokens'>): UsageTotals {
  return { ...row, total_tokens: row.prompt_tokens + row.completion_tokens }
}

/** Requests and tokens in the `usage` table between `from` (inclusive) and `to` (exclusive), in total and by group. */
export async function usageReport(db: Registry, filter: UsageFilter): Promise<UsageReport> {
  const where = and(
    filter.from ? gte(usage.createdAt, new Date(filter.from)) : undefined,
    filter.to ? lt(usage.createdAt, new Date(filter.to)) : undefined,
    filter.key ? eq(usage.apiKeyId, filter.key) : undefined,
    filter.pool ? eq(usage.poolId, filter.pool) : undefined,
  )
  const [totals] = await db.select(totalsColumns).from(usage).where(where)
  let groups: UsageReport['groups'] = []
  if (filter.groupBy) {
    const column = GROUP_COLUMN[filter.groupBy]
    const order = filter.groupBy === 'day' ? column : sql`count(*) DESC, ${column}`
    const rows = await db
      .select({ group: column, ...totalsColumns })
      .from(usage)
      .where(where)
      .groupBy(column)
      .orderBy(order)
    groups = rows.map(({ group, ...row }) => ({ group, ...withTotal(row) }))
  }
  return {
    from: filter.from ?? null,
    to: filter.to ?? null,
    key: filter.key ?? null,
    pool: filter.pool ?? null,
    group_by: filter.groupBy ?? null,
    totals: withTotal(totals ?? { requests: 0, prompt_tokens: 0, completion_tokens: 0 }),
    groups,
  }
}
