import { and, eq, isNull } from 'drizzle-orm'
import type { Registry } from '../../db/client.ts'
import { nodes, replicas } from '../../db/schema.ts'
import type { NodeRow } from '../../db/schema.ts'
import type { GpuInfo } from '../../protocol/index.ts'

export async function insertNode(db: Registry, row: { id: string; name: string; tokenHash: string; labels: Record<string, string> }): Promise<NodeRow> {
  const [inserted] = await db.insert(nodes).values(row).returning()
  if (!inserted) throw new Error('insert into nodes returned no row')
  return inserted
}

export async function findNode(db: Registry, id: string): Promise<NodeRow | undefined> {
  return db.query.nodes.findFirst({ where: eq(nodes.id, id) })
}

export async function findNodeByName(db: Registry, name: string): Promise<NodeRow | undefined> {
  return db.query.nodes.findFirst({ where: eq(nodes.name, name) })
}

export async function listNodes(db: Registry): Promise<NodeRow[]> {
  return db.select().from(nodes).orderBy(nodes.createdAt)
}

export async function markNodeOnline(
  db: Registry,
  { id, hostname, agentVersion, gpus, now }: { id: string; hostname: string; agentVersion: string; gpus: GpuInfo[]; now: Date },
): Promise<void> {
  await db
    .update(nodes)
    .set({ status: 'online', hostname, agentVersion, gpus, lastSeenAt: now })
    .where(and(eq(nodes.id, id), isNull(nodes.revokedAt)))
}

export async function touchNode(db: Registry, { id, gpus, now }: { id: string; gpus: GpuInfo[]; now: Date }): Promise<void> {
  await db
    .update(nodes)
    .set({ lastSeenAt: now, gpus })
    .where(and(eq(nodes.id, id), isNull(nodes.revokedAt)))
}

/** The node's agent is gone: the node goes offline and whatever it served is lost until it returns. */
export async function markNodeOffline(db: Registry, { id, now }: { id: string; now: Date }): Promise<void> {
  await db.batch([
    db
      .update(nodes)
      .set({ status: 'offline' })
      .where(and(eq(nodes.id, id), isNull(nodes.revokedAt))),
    db.update(replicas).set({ state: 'lost', updatedAt: now }).where(eq(replicas.nodeId, id)),
  ])
}

/** Revokes the node's token; false when there was no live node with that id. */
export async function revokeNode(db: Registry, { id, now }: { id: string; now: Date }): Promise<boolean> {
  const [revoked] = await db.batch([
    db
      .update(nodes)
      .set({ status: 'revoked', revokedAt: now })
      .where(and(eq(nodes.id, id), isNull(nodes.revokedAt)))
      .returning({ id: nodes.id }),
    db.update(replicas).set({ state: 'lost', updatedAt: now }).where(eq(replicas.nodeId, id)),
  ])
  return revoked.length > 0
}

/** Cordons the node for maintenance (a time) or lifts it (null); the row as stored, undefined when there is none. */
export async function setNodeCordon(db: Registry, { id, at }: { id: string; at: Date | null }): Promise<NodeRow | undefined> {
  const [row] = await db.update(nodes).set({ cordonedAt: at }).where(eq(nodes.id, id)).returning()
  return row
}
