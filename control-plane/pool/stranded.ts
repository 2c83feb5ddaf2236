import type { AdmissionRefusal } from './grant.ts'
import { availability } from './placement.ts'
import type { PlacementCandidate } from './placement.ts'
import { poolRefusals } from './refusals.ts'

/**
 * A lost node's replica still counts as one that may serve this long after its node went away:
 * an agent that a deploy disconnected dials back within its reconnect backoff cap (30 s).
 */
export const OFFLINE_GRACE_MS = 30_000

/** What the stranded-queue decision needs of the pool. */
export interface StrandedView {
  poolId: string
  /** Replicas as placement sees them: cordons, maintenance and pending drains applied. */
  placeable: readonly PlacementCandidate[]
  /** When each lost replica's node went away. */
  lostAt: ReadonlyMap<string, number>
  /** Why no stopped replica may be started (maintenance, cordons), or null when one may. */
  cannotStart: (candidates: readonly PlacementCandidate[]) => string | null
  now: number
}

function lostWithinGrace(c: PlacementCandidate, lostAt: ReadonlyMap<string, number>, now: number): boolean {
  return c.state === 'lost' && (lostAt.get(c.nodeId) ?? now) + OFFLINE_GRACE_MS > now
}

/**
 * Why no replica of the pool can ever serve its queued tasks, or null while one still may: one
 * that serves or will without anyone acting (ready, starting, restarting), a stopped one the pool
 * may start, or a lost one whose node may still come back within `OFFLINE_GRACE_MS`. Revoked
 * nodes, cordoned ones, a breaker left open and nodes gone past the grace leave nothing.
 */
export function strandedRefusal({ poolId, placeable, lostAt, cannotStart, now }: StrandedView): AdmissionRefusal | null {
  if (placeable.length === 0) return poolRefusals.noReplicaLeft(poolId)
  if (placeable.some((c) => lostWithinGrace(c, lostAt, now))) return null
  const serving = availability(placeable)
  if (serving === 'serving') return null
  if (serving === 'needs_preload') {
    const reason = cannotStart(placeable)
    return reason === null ? null : poolRefusals.cannotStart(reason)
  }
  return poolRefusals.everyReplicaDown(poolId)
}

/** When a lost replica's grace ends, so the queue is looked at again then; null when none is pending. */
export function graceEndsAt(lostAt: ReadonlyMap<string, number>, now: number): number | null {
  let earliest: number | null = null
  for (const at of lostAt.values()) {
    const ends = at + OFFLINE_GRACE_MS
    if (ends > now && (earliest === null || ends < earliest)) earliest = ends
  }
  return earliest
}
