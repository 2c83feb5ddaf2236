/**
 * When a queued task should start: the slots that will serve it each free up at some moment
 * (now for a free slot, when its running task is expected to end for a busy one, when its engine
 * is expected to be up for a starting one), and every task ahead takes the next slot to free
 * for one measured task length.
 */
export function predictStartMs({
  position,
  slotFreeInMs,
  averageTaskMs,
}: {
  position: number
  slotFreeInMs: readonly number[]
  averageTaskMs: number
}): number {
  if (slotFreeInMs.length === 0) return 0
  const freeIn = [...slotFreeInMs].sort((a, b) => a - b)
  // With equal task lengths the slots serve the queue round by round, in the order they free up.
  const rounds = Math.floor(position / freeIn.length)
  const slot = freeIn[position % freeIn.length] ?? 0
  return Math.max(0, Math.round(slot + rounds * averageTaskMs))
}

/** How long until a busy slot frees: the task's expected length minus what it has run, never less than nothing. */
export function busySlotFreeInMs({ grantedAt, now, averageTaskMs }: { grantedAt: number; now: number; averageTaskMs: number }): number {
  return Math.max(0, grantedAt + averageTaskMs - now)
}
