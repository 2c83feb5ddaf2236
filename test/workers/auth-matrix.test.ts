/**
 * Who may call what: every route of the app (read from the Hono app itself, so a new route
 * without a row fails here) against every kind of credential, with the status, code and, where
 * the refusal names the credential the route wants, the message. Routes that need an id get one
 * that does not exist (404 once past auth); routes that need a body get none (400 once past auth),
 * so that nothing is created or deleted.
 */
import { exports } from 'cloudflare:workers'
import { inspectRoutes } from 'hono/dev'
import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../control-plane/app.ts'
import { CreateApiKeyResponse } from '../../protocol/index.ts'
import { createNode } from './agent-socket.ts'
import { readAnswer } from './answer-rules.ts'
import { ADMIN_TOKEN, call, uniqueName } from './support.ts'

/** A refusal, or whatever a request that got past auth ends in. */
interface Outcome {
  status: number
  code?: string
  /** Part of the message, where it tells the client which credential to bring. */
  says?: string
}

/** 401 with the message that says which credential the route wants. */
const refused = (says: string): Outcome => ({ status: 401, code: 'unauthorized', says })
const NO_CRED_ADMIN = refused('missing credential: send "Authorization: Bearer <admin token or API key>"')
const NO_CRED_INFER = refused('missing credential: send "Authorization: Bearer <key>"')
const NO_CRED_AGENT = refused('missing credential: agents send "Authorization: Bearer <node token>"')
const BAD_ADMIN = refused('invalid credential: the admin API takes the admin token or an API key')
const BAD_INFER = refused('invalid credential: inference (/v1, /v2/tasks) takes an API key')
const BAD_AGENT = refused('invalid credential: agents connect with a node token')
const ADMIN_NOT_INFER = refused('the admin token is not an inference credential; create an API key with POST /v2/api-keys')
const ADMIN_NOT_NODE = refused('the admin token is not a node token')
const KEY_NOT_NODE = refused('an API key is not a node token')
const NODE_NOT_ADMIN = refused('a node token is not an admin credential')
const NODE_NOT_INFER = refused('a node token is not an inference credential')
const REVOKED = refused('invalid or revoked API key')
const NODE_GONE = refused('this node token was revoked')
const NOT_ADMIN: Outcome = { status: 403, code: 'forbidden', says: 'this API key lacks the "admin" scope' }
const NOT_INFER: Outcome = { status: 403, code: 'forbidden', says: 'this API key lacks the "inference" scope' }
/** The admin token is not a key: it has no usage of its own to show. */
const ADMIN_NO_USAGE: Outcome = { status: 400, code: 'invalid_request', says: 'the admin token is not an API key and has no usage of its own' }
/** Past auth, refused by validation: the request had no body. */
const BAD_BODY: Outcome = { status: 400, code: 'invalid_request' }
/** Past auth, refused because the id in the path does not exist. */
const NO_ID: Outcome = { status: 404, code: 'not_found' }
const ok = (status: number): Outcome => ({ status })

const CREDENTIALS = ['none', 'malformed', 'admin token', 'admin key', 'inference key', 'revoked key', 'node token', 'revoked node token'] as const
type Credential = (typeof CREDENTIALS)[number]
type Row = readonly [Outcome, Outcome, Outcome, Outcome, Outcome, Outcome, Outcome, Outcome]

const MATRIX: Record<string, Row> = {
  //                                                      none, malformed, admin token, admin key, inference key, revoked key, node token, revoked node token
  'GET /health': [ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200)],
  'GET /': [ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200)],
  'GET /openapi.json': [ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200), ok(200)],
  'GET /v2/agent/connect': [NO_CRED_AGENT, BAD_AGENT, ADMIN_NOT_NODE, KEY_NOT_NODE, KEY_NOT_NODE, KEY_NOT_NODE, ok(101), NODE_GONE],
  'POST /v2/nodes': [NO_CRED_ADMIN, BAD_ADMIN, BAD_BODY, BAD_BODY, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/nodes': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/nodes/:id': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/nodes/:id/drain': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/nodes/:id/uncordon': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'DELETE /v2/nodes/:id': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/pools': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/pools/:id{.+}/:command{preload|drain|reload}': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/pools/:id{.+}': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'PATCH /v2/pools/:id{.+}': [NO_CRED_ADMIN, BAD_ADMIN, BAD_BODY, BAD_BODY, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/api-keys': [NO_CRED_ADMIN, BAD_ADMIN, BAD_BODY, BAD_BODY, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/api-keys': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'PATCH /v2/api-keys/:id': [NO_CRED_ADMIN, BAD_ADMIN, BAD_BODY, BAD_BODY, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'DELETE /v2/api-keys/:id': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/debug/costs': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/debug/pool-ceiling': [NO_CRED_ADMIN, BAD_ADMIN, BAD_BODY, BAD_BODY, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/usage': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  // Either scope reads its own usage; the admin token has none.
  'GET /v2/usage/self': [NO_CRED_INFER, BAD_INFER, ADMIN_NO_USAGE, ok(200), ok(200), REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /metrics': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/metrics': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/batches': [NO_CRED_ADMIN, BAD_ADMIN, ok(200), ok(200), NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'GET /v2/batches/:id': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  'POST /v2/batches/:id/cancel': [NO_CRED_ADMIN, BAD_ADMIN, NO_ID, NO_ID, NOT_ADMIN, REVOKED, NODE_NOT_ADMIN, NODE_NOT_ADMIN],
  // The admin token is not an API key: inference takes a key with the inference scope.
  'GET /v1/models': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, ok(200), REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/chat/completions': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/completions': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/embeddings': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v2/tasks': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v2/tasks/:id/events': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v2/tasks/:id/cancel': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v2/tasks/:id': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/files': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v1/files': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, ok(200), REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v1/files/:id': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v1/files/:id/content': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'DELETE /v1/files/:id': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/batches': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, BAD_BODY, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v1/batches': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, ok(200), REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'GET /v1/batches/:id': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
  'POST /v1/batches/:id/cancel': [NO_CRED_INFER, BAD_INFER, ADMIN_NOT_INFER, NOT_INFER, NO_ID, REVOKED, NODE_NOT_INFER, NODE_NOT_INFER],
}

/** Values for path parameters: ids nothing has, and a command of the route's choice. */
const PARAMS: Record<string, string> = { id: uniqueName('absent'), command: 'drain' }

function concretePath(pattern: string): string {
  return pattern.replace(/:(\w+)(\{[^}]*\})?/g, (_, name: string) => {
    const value = PARAMS[name]
    if (value === undefined) throw new Error(`no sample value for the path parameter "${name}" of ${pattern}: add one to PARAMS`)
    return value
  })
}

const tokens: Record<Credential, string | null> = {
  none: null,
  malformed: 'llk.not-a-key',
  'admin token': ADMIN_TOKEN,
  'admin key': '',
  'inference key': '',
  'revoked key': '',
  'node token': '',
  'revoked node token': '',
}

async function issueKey(scopes: string[]): Promise<{ id: string; key: string }> {
  return CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('matrix'), scopes } })).json())
}

async function outcomeOf(method: string, pattern: string, credential: Credential): Promise<Outcome> {
  const path = concretePath(pattern)
  const headers = new Headers()
  const token = tokens[credential]
  if (token !== null) headers.set('Authorization', `Bearer ${token}`)
  if (pattern === '/v2/agent/connect') headers.set('Upgrade', 'websocket')
  const response = await exports.default.fetch(`https://llorch.test${path}`, { method, headers })
  response.webSocket?.accept()
  response.webSocket?.close(1000, 'auth matrix done')
  const answer = await readAnswer(response, path)
  return { status: answer.status, ...(answer.code ? { code: answer.code } : {}), ...(answer.message ? { says: answer.message } : {}) }
}

/** What a cell expects, in the shape `outcomeOf` reports: the message only needs to contain `says`. */
function matcherOf(outcome: Outcome): Record<string, unknown> {
  return { status: outcome.status, ...(outcome.code ? { code: outcome.code } : {}), ...(outcome.says ? { says: expect.stringContaining(outcome.says) } : {}) }
}

const routes = inspectRoutes(createApp())
  .filter((route) => !route.isMiddleware)
  .map((route) => `${route.method} ${route.path}`)

beforeAll(async () => {
  tokens['admin key'] = (await issueKey(['admin'])).key
  tokens['inference key'] = (await issueKey(['inference'])).key
  // Both scopes: the revocation, not a missing scope, is what refuses it.
  const revoked = await issueKey(['inference', 'admin'])
  expect((await call('DELETE', `/v2/api-keys/${revoked.id}`)).status).toBe(200)
  tokens['revoked key'] = revoked.key
  tokens['node token'] = (await createNode()).token
  const gone = await createNode()
  expect((await call('DELETE', `/v2/nodes/${gone.id}`)).status).toBe(200)
  tokens['revoked node token'] = gone.token
})

describe('auth matrix', () => {
  it('has one row for every route of the app, and none for a route it lacks', () => {
    expect([...routes].sort()).toEqual(Object.keys(MATRIX).sort())
  })

  for (const route of routes) {
    it(`answers ${route} for each kind of credential as its row says`, async () => {
      const row = MATRIX[route]
      if (!row) throw new Error(`no row in MATRIX for ${route}: add one`)
      const [method = '', pattern = ''] = route.split(' ')
      const actual: Record<string, Outcome> = {}
      for (const credential of CREDENTIALS) actual[credential] = await outcomeOf(method, pattern, credential)
      expect(actual).toMatchObject(Object.fromEntries(CREDENTIALS.map((credential, i) => [credential, matcherOf(row[i] ?? ok(0))])))
    })
  }
})
