import { Hono } from 'hono'
import { CreateNodeRequest, LlorchError, PoolCommandRequest } from '../../protocol/index.ts'
import type { NodeDrainResult, NodeList, NodeView } from '../../protocol/index.ts'
import type { Registry } from '../../db/client.ts'
import type { NodeRow } from '../../db/schema.ts'
import { issueCredential } from '../auth/credentials.ts'
import type { AppEnv, Bindings } from '../runtime/env.ts'
import { logEvent } from '../runtime/log.ts'
import { readJson } from '../middleware/validate-json.ts'
import { cordonNode, uncordonNode } from '../node/cordon.ts'
import { livePresence, withPresence } from '../node/presence.ts'
import { findNode, findNodeByName, insertNode, listNodes, revokeNode } from '../registry/nodes.ts'
import { listAllReplicas, listReplicasOfNode } from '../registry/replicas.ts'
import { nodeView } from './views.ts'

/** One node with its replicas and the presence its NodeObject reports. */
async function liveNodeView(env: Bindings, db: Registry, row: NodeRow): Promise<NodeView> {
  const [replicas, presence] = await Promise.all([listReplicasOfNode(db, row.id), livePresence(env, [row], new Date())])
  return withPresence(nodeView(row, replicas), presence.get(row.id))
}

/** `/v2/nodes`: register GPU machines, list them, drain them, revoke their tokens. Admin only. */
export const nodeRoutes = new Hono<AppEnv>()
  .post('/', async (c) => {
    const body = await readJson(c, CreateNodeRequest)
    const db = c.var.registry()
    if (await findNodeByName(db, body.name)) throw new LlorchError('conflict', `a node named "${body.name}" already exists`, { param: 'name' })
    const credential = await issueCredential('node')
    const row = await insertNode(db, { id: credential.id, name: body.name, tokenHash: credential.hash, labels: body.labels })
    await c.env.NODES.getByName(row.id).setToken(credential.hash)
    logEvent('node.created', { node: row.id, name: row.name })
    return c.json({ ...nodeView(row, []), token: credential.secret }, 201)
  })
  .get('/', async (c) => {
    const db = c.var.registry()
    const [rows, replicas] = await Promise.all([listNodes(db), listAllReplicas(db)])
    const presence = await livePresence(c.env, rows, new Date())
    const list: NodeList = {
      nodes: rows.map((row) =>
        withPresence(
          nodeView(
            row,
            replicas.filter((r) => r.nodeId === row.id),
          ),
          presence.get(row.id),
        ),
      ),
    }
    return c.json(list)
  })
  .get('/:id', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    const row = await findNode(db, id)
    if (!row) throw new LlorchError('not_found', `no node with id "${id}"`)
    return c.json(await liveNodeView(c.env, db, row))
  })
  .post('/:id/drain', async (c) => {
    const body = await readJson(c, PoolCommandRequest, { emptyAs: {} })
    const result: NodeDrainResult = await cordonNode(c.env, c.var.registry(), { id: c.req.param('id'), deadlineMs: body.deadline_ms, now: new Date() })
    return c.json(result, result.pools.every((p) => p.ok) ? 202 : 502)
  })
  .post('/:id/uncordon', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    await uncordonNode(c.env, db, { id })
    const row = await findNode(db, id)
    if (!row) throw new LlorchError('not_found', `no node with id "${id}"`)
    return c.json(await liveNodeView(c.env, db, row))
  })
  .delete('/:id', async (c) => {
    const db = c.var.registry()
    const id = c.req.param('id')
    const row = await findNode(db, id)
    if (!row) throw new LlorchError('not_found', `no node with id "${id}"`)
    await revokeNode(db, { id, now: new Date() })
    await c.env.NODES.getByName(id).revoke()
    logEvent('node.revoked', { node: id })
    const revoked = await findNode(db, id)
    return c.json(nodeView(revoked ?? row, await listReplicasOfNode(db, id)))
  })
