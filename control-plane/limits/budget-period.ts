import type { BudgetPeriod } from '../../protocol/index.ts'

const DAY_MS = 86_400_000

/** When the calendar period (UTC) holding `now` started and ends; weeks start on Monday. */
export function periodBounds(period: BudgetPeriod, now: number): { start: number; end: number } {
  const date = new Date(now)
  const midnight = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate())
  if (period === 'day') return { start: midnight, end: midnight + DAY_MS }
  if (period === 'week') {
    const start = midnight - ((date.getUTCDay() + 6) % 7) * DAY_MS
    return { start, end: start + 7 * DAY_MS }
  }
  return { start: Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1), end: Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1) }
}
