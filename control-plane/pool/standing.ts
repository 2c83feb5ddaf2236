import type { QueueStanding } from './grant.ts'
import { servesSoon } from './placement.ts'
import type { PlacementCandidate } from './placement.ts'
import type { ReplicaLoads } from './replica-loads.ts'
import { busySlotFreeInMs, predictStartMs } from './start-prediction.ts'

/**
 * Where a queued task at `position` stands: when it should start, and the engine it waits for.
 * With a ready replica, each busy slot frees after the average task length less what it ran,
 * each free slot at once; with none, every slot of a replica that is coming up frees when its
 * engine should be up.
 */
export function standingOf({
  position,
  placeable,
  grants,
  averageTaskMs,
  loads,
  now,
}: {
  position: number
  placeable: readonly PlacementCandidate[]
  grants: ReadonlyArray<{ node_id: string; granted_at: number }>
  averageTaskMs: number
  loads: ReplicaLoads
  now: number
}): QueueStanding {
  const ready = placeable.filter((c) => c.state === 'ready')
  const slotFreeInMs: number[] = []
  if (ready.length > 0) {
    const readyNodes = new Set(ready.map((c) => c.nodeId))
    for (const g of grants) if (readyNodes.has(g.node_id)) slotFreeInMs.push(busySlotFreeInMs({ grantedAt: g.granted_at, now, averageTaskMs }))
    const free = ready.reduce((n, c) => n + Math.max(0, c.slots - c.busy), 0)
    for (let i = 0; i < free; i += 1) slotFreeInMs.push(0)
  } else {
    for (const c of placeable.filter(servesSoon)) {
      const upIn = loads.upInMs(c.nodeId, now)
      for (let i = 0; i < c.slots; i += 1) slotFreeInMs.push(upIn)
    }
  }
  return {
    position,
    predictedStartMs: predictStartMs({ position, slotFreeInMs, averageTaskMs }),
    loading: ready.length > 0 ? null : loads.loading(placeable),
  }
}
