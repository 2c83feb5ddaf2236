import { Hono } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { constantTimeEqual, parseCredential, readBearer, verifyCredential } from '../auth/credentials.ts'
import { missingCredential, wrongCredential } from '../auth/wrong-credential.ts'
import type { AppEnv } from '../runtime/env.ts'
import { logEvent } from '../runtime/log.ts'
import { NODE_ID_HEADER } from '../node/node-id-header.ts'
import { findNode } from '../registry/nodes.ts'

/**
 * `GET /v2/agent/connect`: an agent's WebSocket upgrade. The node token is checked first, before
 * the upgrade, so a refused agent sees a plain 401 saying which credential it sent, and a
 * request without the upgrade (`llorch-agent doctor`) learns whether its token is accepted
 * (426) without replacing the connection of a running agent. The accepted socket lives in the
 * node's NodeObject.
 */
export const agentConnectRoutes = new Hono<AppEnv>().get('/v2/agent/connect', async (c) => {
  const token = readBearer(c.req.header('Authorization'))
  if (!token) throw missingCredential('agent')
  const credential = parseCredential(token)
  if (!credential) throw wrongCredential('agent', (await constantTimeEqual(token, c.var.settings.ADMIN_TOKEN)) ? 'admin_token' : 'unrecognised')
  if (credential.kind !== 'node') throw wrongCredential('agent', 'api_key')
  const node = await findNode(c.var.registry, credential.id)
  if (!node || !(await verifyCredential(token, node.tokenHash))) {
    throw new LlorchError('unauthorized', 'unknown node token: no node holds it (deleted, or from another deployment); create a node with POST /v2/nodes')
  }
  if (node.revokedAt) {
    logEvent('node.refused_revoked', { node: node.id })
    throw new LlorchError('unauthorized', 'this node token was revoked; create a new node with POST /v2/nodes')
  }
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new LlorchError('upgrade_required', 'node token accepted; this endpoint takes a WebSocket upgrade from llorch-agent', {
      details: { node_id: node.id },
    })
  }
  const headers = new Headers(c.req.raw.headers)
  headers.set(NODE_ID_HEADER, node.id)
  return c.env.NODES.getByName(node.id).fetch(c.req.url, { headers })
})
