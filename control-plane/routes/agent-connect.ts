import { Hono } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { constantTimeEqual, parseCredential, readBearer } from '../auth/credentials.ts'
import { missingCredential, wrongCredential } from '../auth/wrong-credential.ts'
import type { AppEnv } from '../runtime/env.ts'
import { logError, logEvent } from '../runtime/log.ts'
import { NODE_ID_HEADER } from '../node/node-id-header.ts'

/** An agent refused because something on the connect path did not answer comes back after this (plus its own jittered backoff). */
export const CONNECT_RETRY_AFTER_SECONDS = 2

/** Anything but a refusal on the connect path (an object that did not answer) is a 503 the agent retries, never a 500. */
function unavailable(node: string, error: unknown): LlorchError {
  if (error instanceof LlorchError) return error
  logError('node.connect_unavailable', { node, error: String(error) })
  return new LlorchError('registry_unavailable', 'the control plane could not take this connection now; try again shortly', {
    retryAfterSeconds: CONNECT_RETRY_AFTER_SECONDS,
  })
}

/**
 * `GET /v2/agent/connect`: an agent's WebSocket upgrade. The node token is checked first, before
 * the upgrade, by the node's own object (it holds the token's hash, so a reconnect storm reads
 * nothing from the registry), so a refused agent sees a plain 401 saying which credential it
 * sent, and a request without the upgrade (`llorch-agent doctor`) learns whether its token is
 * accepted (426) without replacing the connection of a running agent. The accepted socket lives
 * in the node's NodeObject.
 */
export const agentConnectRoutes = new Hono<AppEnv>().get('/v2/agent/connect', async (c) => {
  const token = readBearer(c.req.header('Authorization'))
  if (!token) throw missingCredential('agent')
  const credential = parseCredential(token)
  if (!credential) throw wrongCredential('agent', (await constantTimeEqual(token, c.var.settings.ADMIN_TOKEN)) ? 'admin_token' : 'unrecognised')
  if (credential.kind !== 'node') throw wrongCredential('agent', 'api_key')
  const nodeId = credential.id
  const node = c.env.NODES.getByName(nodeId)
  const checked = await node.verifyToken(token).catch((error: unknown) => {
    throw unavailable(nodeId, error)
  })
  if (!checked.ok) {
    if (checked.code === 'registry_unavailable') throw new LlorchError(checked.code, checked.message, { retryAfterSeconds: CONNECT_RETRY_AFTER_SECONDS })
    if (checked.revoked) logEvent('node.refused_revoked', { node: nodeId })
    throw new LlorchError(checked.code, checked.message)
  }
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new LlorchError('upgrade_required', 'node token accepted; this endpoint takes a WebSocket upgrade from llorch-agent', {
      details: { node_id: nodeId },
    })
  }
  const headers = new Headers(c.req.raw.headers)
  headers.set(NODE_ID_HEADER, nodeId)
  try {
    return await node.fetch(c.req.url, { headers })
  } catch (error) {
    throw unavailable(nodeId, error)
  }
})
