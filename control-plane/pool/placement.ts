import type { ReplicaState } from '../../protocol/index.ts'

/** A replica as placement sees it. */
export interface PlacementCandidate {
  nodeId: string
  state: ReplicaState
  slots: number
  busy: number
  /** Failed and not restarting until a reload. */
  breakerOpen: boolean
  recentFailures: number
  lastGrantedAt: number
}

/**
 * Picks the replica for the next task: ready, with a free slot, most free slots first, then
 * fewest recent failures, then the one granted longest ago so equal replicas share the load.
 */
export function pickReplica(candidates: readonly PlacementCandidate[]): PlacementCandidate | null {
  let best: PlacementCandidate | null = null
  for (const candidate of candidates) {
    if (candidate.state !== 'ready' || candidate.busy >= candidate.slots) continue
    if (!best || better(candidate, best)) best = candidate
  }
  return best
}

function better(a: PlacementCandidate, b: PlacementCandidate): boolean {
  const freeA = a.slots - a.busy
  const freeB = b.slots - b.busy
  if (freeA !== freeB) return freeA > freeB
  if (a.recentFailures !== b.recentFailures) return a.recentFailures < b.recentFailures
  if (a.lastGrantedAt !== b.lastGrantedAt) return a.lastGrantedAt < b.lastGrantedAt
  return a.nodeId < b.nodeId
}

/** A replica that serves now, or will without anyone acting: starting, draining, or failed and restarting. */
export function servesSoon(candidate: PlacementCandidate): boolean {
  if (candidate.state === 'failed') return !candidate.breakerOpen
  return candidate.state === 'ready' || candidate.state === 'starting' || candidate.state === 'draining'
}

/** Whether any replica could serve a task now or soon, and whether one must be started first. */
export function availability(candidates: readonly PlacementCandidate[]): 'serving' | 'needs_preload' | 'none' {
  if (candidates.some(servesSoon)) return 'serving'
  if (candidates.some((c) => c.state === 'stopped')) return 'needs_preload'
  return 'none'
}
