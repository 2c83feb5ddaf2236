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

/** Sessions whose last replica is remembered; past that the oldest is forgotten. */
const MAX_REMEMBERED_SESSIONS = 10_000

/** Which replica served each affinity key last; an in-memory cache, rebuilt empty (rendezvous hashing then decides). */
export class AffinityTable {
  readonly #lastNode = new Map<string, string>()

  lastNode(key: string): string | undefined {
    return this.#lastNode.get(key)
  }

  served(key: string, nodeId: string): void {
    // Re-inserted so that the map's order is least recently served first.
    this.#lastNode.delete(key)
    this.#lastNode.set(key, nodeId)
    if (this.#lastNode.size > MAX_REMEMBERED_SESSIONS) {
      const oldest = this.#lastNode.keys().next()
      if (!oldest.done) this.#lastNode.delete(oldest.value)
    }
  }
}

/** 32-bit FNV-1a: a fast, stable hash, enough to spread sessions over replicas. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** The ready replica a key hashes to (rendezvous hashing): the same in every instance, and only a removed replica's keys move. */
function hashedReplica(candidates: readonly PlacementCandidate[], key: string): PlacementCandidate | undefined {
  let best: { candidate: PlacementCandidate; score: number } | undefined
  for (const candidate of candidates) {
    if (candidate.state !== 'ready') continue
    const score = fnv1a(`${key}\u0000${candidate.nodeId}`)
    if (!best || score > best.score) best = { candidate, score }
  }
  return best?.candidate
}

/**
 * Picks the replica for a task. One with an affinity key (a session, a long prompt prefix) goes
 * to the replica that served that key last, else to the one the key hashes to, while that
 * replica has a free slot, so the engine's prompt cache is reused; otherwise, and for tasks
 * without a key, to the least loaded (`pickReplica`). Bounded by free slots: affinity never
 * queues a task that another replica could start.
 */
export function placeTask(candidates: readonly PlacementCandidate[], affinityKey: string | undefined, table: AffinityTable): PlacementCandidate | null {
  if (affinityKey !== undefined) {
    const last = table.lastNode(affinityKey)
    const preferred =
      (last !== undefined ? candidates.find((c) => c.nodeId === last && c.state === 'ready') : undefined) ?? hashedReplica(candidates, affinityKey)
    if (preferred && preferred.busy < preferred.slots) return preferred
  }
  return pickReplica(candidates)
}
