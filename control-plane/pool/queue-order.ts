import type { Priority } from '../../protocol/index.ts'

export const PRIORITY_RANK = { interactive: 0, batch: 1 } as const satisfies Record<Priority, number>

/**
 * The queue's order as SQL: interactive before batch, tasks placed again after a failover at
 * the head of their class, then first come first served.
 */
export const QUEUE_ORDER_SQL = 'priority_rank ASC, requeued DESC, seq ASC'

/** Seconds a client turned away with 429 should wait: the queue's expected drain time, bounded. */
export function retryAfterSeconds({ queued, readySlots, averageTaskMs }: { queued: number; readySlots: number; averageTaskMs: number }): number {
  const seconds = Math.ceil((averageTaskMs * Math.max(1, queued)) / Math.max(1, readySlots) / 1000)
  return Math.min(60, Math.max(1, seconds))
}
