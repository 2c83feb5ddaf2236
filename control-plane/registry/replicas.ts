import { eq } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { replicas } from '../../db/schema.ts'
import type { ReplicaRow } from '../../db/schema.ts'
import type { ReplicaReport } from '../../protocol/index.ts'

/** A node hosts at most one replica per pool, so the pair names it. */
export function replicaId(nodeId: string, poolId: string): string {
  return `${nodeId}/${poolId}`
}

export async function upsertReplica(db: Registry, { nodeId, report, now }: { nodeId: string; report: ReplicaReport; now: Date }): Promise<void> {
  const values = {
    state: report.state,
    slots: report.slots,
    engine: report.engine,
    engineVersion: report.engine_version ?? null,
    reason: report.reason ?? null,
    download: report.download ?? null,
    updatedAt: now,
  }
  await db
    .insert(replicas)
    .values({ id: replicaId(nodeId, report.pool), poolId: report.pool, nodeId, ...values })
    .onConflictDoUpdate({ target: replicas.id, set: values })
}

export async function listReplicasOfPool(db: Registry, poolId: string): Promise<ReplicaRow[]> {
  return db.select().from(replicas).where(eq(replicas.poolId, poolId)).orderBy(replicas.nodeId)
}

export async function listReplicasOfNode(db: Registry, nodeId: string): Promise<ReplicaRow[]> {
  return db.select().from(replicas).where(eq(replicas.nodeId, nodeId)).orderBy(replicas.poolId)
}

export async function listAllReplicas(db: Registry): Promise<ReplicaRow[]> {
  return db.select().from(replicas).orderBy(replicas.poolId, replicas.nodeId)
}
