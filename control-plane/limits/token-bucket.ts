import { z } from 'zod'

/** Requests and tokens per minute refill over this window. */
export const RATE_WINDOW_MS = 60_000

/**
 * A per-minute limit as a token bucket: `level` is what may be spent now, refilled at `capacity`
 * per minute up to `capacity`. Tokens are spent after the fact, so the level may go below zero
 * and the key waits until it is back above.
 */
export const Bucket = z.object({ level: z.number(), at: z.number() })
export type Bucket = z.infer<typeof Bucket>

/** The bucket as it stands at `now`; a new bucket starts full. */
export function refill(bucket: Bucket | null, capacity: number, now: number): Bucket {
  if (!bucket) return { level: capacity, at: now }
  const elapsed = Math.max(0, now - bucket.at)
  return { level: Math.min(capacity, bucket.level + (elapsed * capacity) / RATE_WINDOW_MS), at: now }
}

/** How long until the level reaches `wanted`. */
export function msUntil(bucket: Bucket, capacity: number, wanted: number): number {
  if (bucket.level >= wanted) return 0
  return Math.ceil(((wanted - bucket.level) * RATE_WINDOW_MS) / capacity)
}
