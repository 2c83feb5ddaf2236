import { Hono } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { parseCredential, readBearer, verifyCredential } from '../auth/credentials.ts'
import type { AppEnv } from '../env.ts'
import { logEvent } from '../log.ts'
import { NODE_ID_HEADER } from '../node-object.ts'
import { findNode } from '../registry/nodes.ts'

/**
 * `GET /v2/agent/connect`: an agent's WebSocket upgrade. The node token is checked here, before
 * the upgrade, so a refused agent sees a plain 401; the accepted socket lives in its NodeObject.
 */
export const agentConnectRoutes = new Hono<AppEnv>().get('/v2/agent/connect', async (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new LlorchError('invalid_request', 'this endpoint takes a WebSocket upgrade from llorch-agent')
  }
  const token = readBearer(c.req.header('Authorization'))
  const credential = token ? parseCredential(token) : null
  if (!token || !credential || credential.kind !== 'node') throw new LlorchError('unauthorized', 'a node token is required')
  const node = await findNode(c.var.registry, credential.id)
  if (!node || !(await verifyCredential(token, node.tokenHash))) throw new LlorchError('unauthorized', 'unknown node token')
  if (node.revokedAt) {
    logEvent('node.refused_revoked', { node: node.id })
    throw new LlorchError('unauthorized', 'this node token was revoked')
  }
  const headers = new Headers(c.req.raw.headers)
  headers.set(NODE_ID_HEADER, node.id)
  return c.env.NODES.getByName(node.id).fetch(c.req.url, { headers })
})
