export interface BackoffPolicy {
  /** Ceiling of the first delay. */
  initialMs: number
  /** No delay ceiling grows past this. */
  maxMs: number
}

/** The ceiling of the delay before retry number `attempt` (0-based): `initial · 2^attempt`, capped. */
export function backoffCeilingMs({ attempt, initialMs, maxMs }: BackoffPolicy & { attempt: number }): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt))
}

/**
 * Exponential backoff with full jitter: a uniform delay in [0, ceiling]. Spreads restarts of many
 * replicas (or reconnects of many agents) instead of having them retry in lockstep.
 */
export function backoffDelayMs({ attempt, initialMs, maxMs, random = Math.random }: BackoffPolicy & { attempt: number; random?: () => number }): number {
  return Math.round(random() * backoffCeilingMs({ attempt, initialMs, maxMs }))
}
