import type { DebugCosts } from '../../protocol/index.ts'

/**
 * What the control plane spent, counted in this isolate: Durable Object entry points by
 * `Class.method` and Durable Object storage writes. Local workerd runs the Worker and its Durable
 * Objects in one isolate, so there the counts cover the whole control plane; `npm run bench`
 * reads them at `GET /v2/debug/costs` to report the cost per task. In production each isolate
 * counts only its own share.
 */

const entryPoints = new Map<string, number>()
let storageWrites = 0
const criticalPath = { dispatches: 0, legs_before_dispatch: 0 }

export function countEntryPoint(name: string): void {
  entryPoints.set(name, (entryPoints.get(name) ?? 0) + 1)
}

export function countStorageWrite(): void {
  storageWrites += 1
}

/** A task attempt was dispatched after `legs` one-way messages in sequence (see `DebugCosts.critical_path`). */
export function countDispatch(legs: number): void {
  criticalPath.dispatches += 1
  criticalPath.legs_before_dispatch += legs
}

export function costCounts(): DebugCosts {
  return { entry_points: Object.fromEntries(entryPoints), storage_writes: storageWrites, critical_path: { ...criticalPath } }
}
