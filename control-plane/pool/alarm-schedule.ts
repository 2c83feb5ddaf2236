/**
 * When the pool's alarm must fire next: the earliest of its due times (task deadlines, the
 * metrics flush, the lifecycle's next step, the orphan check), or null when nothing is due.
 */
export function nextAlarmAt(dueTimes: ReadonlyArray<number | null>): number | null {
  let next: number | null = null
  for (const at of dueTimes) if (at !== null && (next === null || at < next)) next = at
  return next
}

/**
 * Whether the alarm must be set again. One already set no later than `next` stays (when it fires
 * early it finds nothing due and re-arms), so most tasks cost no alarm write.
 */
export function alarmNeedsSetting(setAt: number | null, next: number | null): next is number {
  return next !== null && (setAt === null || setAt > next)
}
