import type { ReplicaState } from '../../protocol/index.ts'

/** One node's drain and restart may take this long (a vLLM load takes minutes); then the reload stops there. */
export const ROLLING_STEP_TIMEOUT_MS = 15 * 60_000

/**
 * A reload that goes one replica at a time: the current node is drained (`stopping`), then
 * started again (`starting`), and only once it is ready does the next node drain. Stored in the
 * pool's Durable Object, so it goes on after a restart.
 */
export interface RollingReload {
  order: string[]
  index: number
  phase: 'stopping' | 'starting'
  stepStartedAt: number
  /** How long each node's in-flight tasks may finish; the node's default when absent. */
  deadlineMs?: number
}

export interface RolloutReplica {
  nodeId: string
  state: ReplicaState
  cordoned: boolean
}

export type RolloutCommand = { nodeId: string; command: 'drain' | 'preload' | 'reload' }

export interface RolloutStep {
  rollout: RollingReload | null
  commands: RolloutCommand[]
  /** Why the reload ended early, for the log; null when it goes on or finished. */
  stopped: string | null
}

const serving = (r: RolloutReplica) => !r.cordoned && r.state === 'ready'

/**
 * How a reload of the pool starts. With two or more ready replicas they roll one at a time;
 * a single ready one is reloaded in place (its agent starts the new engine beside the old one
 * where the port allows). Failed replicas are reloaded at once (that closes their breaker);
 * stopped and starting ones are left alone: they start with a fresh engine anyway.
 */
export function beginReload(replicas: readonly RolloutReplica[], { now, deadlineMs }: { now: number; deadlineMs?: number }): RolloutStep {
  const failed = replicas.filter((r) => r.state === 'failed' && !r.cordoned).map((r) => ({ nodeId: r.nodeId, command: 'reload' as const }))
  const ready = replicas.filter(serving).map((r) => r.nodeId)
  if (ready.length < 2) return { rollout: null, commands: [...failed, ...ready.map((nodeId) => ({ nodeId, command: 'reload' as const }))], stopped: null }
  const [first] = ready
  const rollout: RollingReload = { order: ready, index: 0, phase: 'stopping', stepStartedAt: now, ...(deadlineMs !== undefined ? { deadlineMs } : {}) }
  return { rollout, commands: [...failed, { nodeId: first ?? '', command: 'drain' }], stopped: null }
}

/** Moves the reload on from what the replicas report now. */
export function advanceReload(rollout: RollingReload, replicas: readonly RolloutReplica[], now: number): RolloutStep {
  const nodeId = rollout.order[rollout.index]
  const current = replicas.find((r) => r.nodeId === nodeId)
  if (now - rollout.stepStartedAt > ROLLING_STEP_TIMEOUT_MS) {
    return { rollout: null, commands: [], stopped: `node ${nodeId} did not finish its reload within ${ROLLING_STEP_TIMEOUT_MS} ms` }
  }
  if (!current || current.state === 'lost' || current.cordoned) return nextNode(rollout, replicas, now)
  if (rollout.phase === 'stopping') {
    if (current.state === 'failed') return nextNode(rollout, replicas, now)
    if (current.state !== 'stopped') return { rollout, commands: [], stopped: null }
    return { rollout: { ...rollout, phase: 'starting', stepStartedAt: now }, commands: [{ nodeId: current.nodeId, command: 'preload' }], stopped: null }
  }
  if (current.state === 'failed')
    return { rollout: null, commands: [], stopped: `the new engine on node ${current.nodeId} failed; the other replicas keep their engines` }
  if (current.state !== 'ready') return { rollout, commands: [], stopped: null }
  return nextNode(rollout, replicas, now)
}

/** Drains the next node still ready; the last one standing is reloaded in place instead. */
function nextNode(rollout: RollingReload, replicas: readonly RolloutReplica[], now: number): RolloutStep {
  for (let index = rollout.index + 1; index < rollout.order.length; index += 1) {
    const nodeId = rollout.order[index] ?? ''
    const next = replicas.find((r) => r.nodeId === nodeId)
    if (!next || !serving(next)) continue
    if (!replicas.some((r) => r.nodeId !== nodeId && serving(r))) return { rollout: null, commands: [{ nodeId, command: 'reload' }], stopped: null }
    return { rollout: { ...rollout, index, phase: 'stopping', stepStartedAt: now }, commands: [{ nodeId, command: 'drain' }], stopped: null }
  }
  return { rollout: null, commands: [], stopped: null }
}
