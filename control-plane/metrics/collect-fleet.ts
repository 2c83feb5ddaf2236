import type { Registry } from '../../db/client.ts'
import { NO_BATCH_LINES } from '../../protocol/index.ts'
import type { BatchLineCounts, FleetMetrics } from '../../protocol/index.ts'
import { ALL_BATCHES_LISTING } from '../batch/listing-store.ts'
import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'
import { listNodes } from '../registry/nodes.ts'
import { listPools } from '../registry/pools.ts'

/**
 * Asks every pool and every unrevoked node the registry lists for its numbers, all at once. An
 * object that fails is reported as unreachable; the others still answer.
 */
export async function collectFleet(env: Bindings, db: Registry, now: Date): Promise<FleetMetrics> {
  const [pools, nodes] = await Promise.all([listPools(db), listNodes(db)])
  const live = nodes.filter((n) => n.revokedAt === null)
  const [poolResults, nodeResults, batchLines] = await Promise.all([
    Promise.allSettled(pools.map((p) => env.POOLS.getByName(p.id).metrics())),
    Promise.allSettled(live.map((n) => env.NODES.getByName(n.id).metrics())),
    batchLineCounts(env),
  ])
  const fleet: FleetMetrics = { collected_at: now.toISOString(), pools: [], nodes: [], batch_lines: batchLines, unreachable: [] }
  poolResults.forEach((result, i) => {
    const id = pools[i]?.id ?? ''
    if (result.status === 'fulfilled') fleet.pools.push(result.value)
    else unreachable(fleet, 'pool', id, result.reason)
  })
  nodeResults.forEach((result, i) => {
    const id = live[i]?.id ?? ''
    if (result.status === 'fulfilled') fleet.nodes.push(result.value)
    else unreachable(fleet, 'node', id, result.reason)
  })
  return fleet
}

/** Batch lines by outcome; zeros, logged, when their object does not answer. */
async function batchLineCounts(env: Bindings): Promise<BatchLineCounts> {
  try {
    return await env.LISTINGS.getByName(ALL_BATCHES_LISTING).lineCounts()
  } catch (error) {
    logError('metrics.batch_lines_unreachable', { error: String(error) })
    return { ...NO_BATCH_LINES }
  }
}

function unreachable(fleet: FleetMetrics, kind: 'pool' | 'node', id: string, reason: unknown): void {
  logError('metrics.object_unreachable', { [kind]: id, error: String(reason) })
  fleet.unreachable.push({ kind, id })
}
