import { Hono } from 'hono'
import { CreateNodeRequest, LlorchError, PoolCommandRequest } from '../../protocol/index.ts'
import type { NodeDrainResult, NodeList } from '../../protocol/index.ts'
import { issueCredential } from '../auth/credentials.ts'
import type { AppEnv } from '../env.ts'
import { logEvent } from '../log.ts'
import { readJson } from '../middleware/validate-json.ts'
import { findNode, findNodeByName, insertNode, listNodes, revokeNode } from '../registry/nodes.ts'
import { listAllReplicas, listReplicasOfNode } from '../registry/replicas.ts'
import { nodeView } from '../registry/views.ts'

/** `/v2/nodes`: register GPU machines, list them, drain them, revoke their tokens. Admin only. */
export const nodeRoutes = new Hono<AppEnv>()
  .post('/', async (c) => {
    const body = await readJson(c, CreateNodeRequest)
    const db = c.var.registry
    if (await findNodeByName(db, body.name)) throw new LlorchError('conflict', `a node named "${body.name}" already exists`, { param: 'name' })
    const credential = await issueCredential('node')
    const row = await insertNode(db, { id: credential.id, name: body.name, tokenHash: credential.hash, labels: body.labels })
    logEvent('node.created', { node: row.id, name: row.name })
    return c.json({ ...nodeView(row, []), token: credential.secret }, 201)
  })
  .get('/', async (c) => {
    const db = c.var.registry
    const [rows, replicas] = await Promise.all([listNodes(db), listAllReplicas(db)])
    const list: NodeList = { nodes: rows.map((row) => nodeView(row, replicas.filter((r) => r.nodeId === row.id))) }
    return c.json(list)
  })
  .get('/:id', async (c) => {
    const db = c.var.registry
    const id = c.req.param('id')
    const row = await findNode(db, id)
    if (!row) throw new LlorchError('not_found', `no node with id "${id}"`)
    return c.json(nodeView(row, await listReplicasOfNode(db, id)))
  })
  .post('/:id/drain', async (c) => {
    const db = c.var.registry
    const id = c.req.param('id')
    const body = await readJson(c, PoolCommandRequest, { emptyAs: {} })
    if (!(await findNode(db, id))) throw new LlorchError('not_found', `no node with id "${id}"`)
    const replicas = (await listReplicasOfNode(db, id)).filter((r) => r.state !== 'lost')
    if (replicas.length === 0) throw new LlorchError('no_replica', `node "${id}" serves no pool on a connected agent`)
    const node = c.env.NODES.getByName(id)
    const pools = await Promise.all(
      replicas.map(async (r) => {
        const result = await node.command({ command: 'drain', pool: r.poolId, deadlineMs: body.deadline_ms })
        return { pool: r.poolId, ok: result.ok, error: result.error }
      }),
    )
    const result: NodeDrainResult = { node_id: id, command: 'drain', pools }
    return c.json(result, pools.every((p) => p.ok) ? 202 : 502)
  })
  .delete('/:id', async (c) => {
    const db = c.var.registry
    const id = c.req.param('id')
    const row = await findNode(db, id)
    if (!row) throw new LlorchError('not_found', `no node with id "${id}"`)
    await revokeNode(db, { id, now: new Date() })
    await c.env.NODES.getByName(id).revoke()
    logEvent('node.revoked', { node: id })
    const revoked = await findNode(db, id)
    return c.json(nodeView(revoked ?? row, await listReplicasOfNode(db, id)))
  })
