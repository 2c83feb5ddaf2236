import { describeDownload } from '../../protocol/index.ts'
import type { DownloadProgress, ReplicaState } from '../../protocol/index.ts'
import type { Loading } from './grant.ts'
import type { PlacementCandidate } from './placement.ts'

/** Assumed engine start time before one has been seen, for the predicted start of tasks waiting on it. */
export const DEFAULT_ENGINE_START_MS = 30_000

/**
 * How long this pool's engines take to start, measured from the replica states its nodes
 * report (starting → ready), and which starts the pool asked for itself (on demand). A cache:
 * an object restart begins again from the default.
 */
export class ReplicaLoads {
  readonly #startingSince = new Map<string, number>()
  readonly #onDemand = new Set<string>()
  readonly #last = new Map<string, ReplicaState>()
  /** Nodes whose agent is fetching the replica's files, with how far it is. */
  readonly #downloads = new Map<string, DownloadProgress>()
  #averageStartMs = DEFAULT_ENGINE_START_MS

  observe(nodeId: string, state: ReplicaState, now: number, download: DownloadProgress | null = null): void {
    if (download === null) this.#downloads.delete(nodeId)
    else this.#downloads.set(nodeId, download)
    const before = this.#last.get(nodeId)
    this.#last.set(nodeId, state)
    if (state === 'starting' && before !== 'starting' && !this.#startingSince.has(nodeId)) this.#startingSince.set(nodeId, now)
    // A replica asked to start may still report stopped for a heartbeat or two.
    if (state === 'starting' || state === 'stopped') return
    const since = this.#startingSince.get(nodeId)
    if (state === 'ready' && since !== undefined) this.#averageStartMs = this.#averageStartMs * 0.5 + (now - since) * 0.5
    this.#startingSince.delete(nodeId)
    this.#onDemand.delete(nodeId)
  }

  startedOnDemand(nodeId: string, now: number): void {
    this.#onDemand.add(nodeId)
    if (!this.#startingSince.has(nodeId)) this.#startingSince.set(nodeId, now)
  }

  /** Expected time until the replica on `nodeId` serves; a full start when it is not seen starting (after its download). */
  upInMs(nodeId: string, now: number): number {
    const downloadEta = this.#downloads.get(nodeId)?.eta_ms
    // The engine starts once the files are in: the rest of the download, then a whole start.
    if (downloadEta !== undefined && downloadEta !== null) return downloadEta + this.#averageStartMs
    const since = this.#startingSince.get(nodeId)
    return Math.max(0, (since ?? now) + this.#averageStartMs - now)
  }

  /** The engine start a task waits for when no replica is ready, or null when none is under way. */
  loading(candidates: readonly PlacementCandidate[]): Loading | null {
    const starting = candidates.find((c) => c.state === 'starting' || this.#onDemand.has(c.nodeId))
    if (starting) {
      const download = this.#downloads.get(starting.nodeId)
      if (download)
        return {
          reason: 'downloading',
          nodeId: starting.nodeId,
          message: `node ${starting.nodeId} is fetching the model: ${describeDownload(download)}`,
          download,
        }
      const onDemand = this.#onDemand.has(starting.nodeId)
      return {
        reason: onDemand ? 'on_demand_start' : 'replica_starting',
        nodeId: starting.nodeId,
        message: onDemand
          ? `starting an engine on node ${starting.nodeId}: the pool had no replica running`
          : `the engine on node ${starting.nodeId} is starting`,
      }
    }
    const restarting = candidates.find((c) => c.state === 'failed' && !c.breakerOpen)
    if (!restarting) return null
    return { reason: 'replica_restarting', nodeId: restarting.nodeId, message: `the engine on node ${restarting.nodeId} failed and is restarting` }
  }
}
