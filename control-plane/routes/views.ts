import type { ApiKeyRow, NodeRow, PoolRow, ReplicaRow } from '../../db/schema.ts'
import type { ApiKeyView, NodeView, PoolView, ReplicaView } from '../../protocol/index.ts'
import type { PoolStatus } from '../pool/pool-status.ts'
import { policyOf } from '../registry/pools.ts'

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null
}

export function replicaView(row: ReplicaRow, busy: number | null): ReplicaView {
  return {
    pool: row.poolId,
    node_id: row.nodeId,
    state: row.state,
    engine: row.engine,
    engine_version: row.engineVersion,
    slots: row.slots,
    slots_busy: busy,
    reason: row.reason,
    download: row.download ?? null,
    updated_at: iso(row.updatedAt),
  }
}

export function nodeView(row: NodeRow, replicas: ReplicaRow[]): NodeView {
  return {
    id: row.id,
    name: row.name,
    labels: row.labels,
    status: row.status,
    hostname: row.hostname,
    agent_version: row.agentVersion,
    gpus: row.gpus,
    last_seen_at: iso(row.lastSeenAt),
    created_at: iso(row.createdAt),
    cordoned_at: iso(row.cordonedAt),
    replicas: replicas.map((r) => replicaView(r, null)),
  }
}

/** The registry's view of a pool, with live queue and slot numbers when its PoolObject answered. */
export function poolView(row: PoolRow, replicas: ReplicaRow[], status: PoolStatus | null): PoolView {
  const busyByNode = new Map(status?.replicas.map((r) => [r.nodeId, r.busy]) ?? [])
  const views = replicas.map((r) => replicaView(r, status ? (busyByNode.get(r.nodeId) ?? 0) : null))
  const live = views.filter((r) => r.state === 'ready')
  return {
    id: row.id,
    engine: row.engine,
    policy: policyOf(row),
    state: live.length > 0 ? 'ready' : views.some((r) => r.state === 'starting' || r.state === 'downloading') ? 'starting' : 'unavailable',
    queue_depth: status?.queueDepth ?? null,
    slots_total: live.reduce((n, r) => n + r.slots, 0),
    slots_busy: status ? views.reduce((n, r) => n + (r.slots_busy ?? 0), 0) : null,
    maintenance_drained: status?.lifecycle.maintenanceDrained ?? null,
    rolling_reload: status?.lifecycle.rollingReload ?? null,
    replicas: views,
  }
}

export function apiKeyView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    limits: row.limits,
    created_at: iso(row.createdAt),
    revoked_at: iso(row.revokedAt),
  }
}
