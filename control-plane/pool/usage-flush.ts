import type { Registry } from '../../db/client.ts'
import { logError } from '../runtime/log.ts'
import { recordUsage } from '../registry/usage.ts'
import type { PoolStorage } from './pool-storage.ts'
import { USAGE_FLUSH_INTERVAL_MS } from './pool-storage.ts'

/** Most buffered usage rows written to the registry in one batch. */
const USAGE_FLUSH_BATCH_ROWS = 500

/**
 * Writes the pool's buffered usage to the registry in one batch once it is due; on failure it
 * stays buffered and is tried again after `USAGE_FLUSH_INTERVAL_MS`. The pool's average task
 * length is saved with it.
 */
export async function flushDueUsage(
  store: PoolStorage,
  { registry, poolId, averageTaskMs, now }: { registry: () => Registry; poolId: string; averageTaskMs: number; now: number },
): Promise<void> {
  const due = store.usageFlushAt()
  if (due === null || due > now) return
  const rows = store.bufferedUsage(USAGE_FLUSH_BATCH_ROWS)
  try {
    await recordUsage(registry(), { poolId, rows })
    store.usageFlushed(
      rows.map((r) => r.task_id),
      now,
    )
    store.saveAverageTaskMs(averageTaskMs)
  } catch (error) {
    logError('pool.usage_flush_failed', { pool: poolId, rows: rows.length, error: String(error) })
    store.postponeUsageFlush(now + USAGE_FLUSH_INTERVAL_MS)
  }
}
