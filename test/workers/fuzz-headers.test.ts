/**
 * Property-based fuzzing of the headers every request carries, on a sample of routes of every
 * kind (public, inference, admin, agent connect, unknown): `Authorization` (garbage, almost-valid
 * `llk.`/`lln.` shapes, real credentials with changed characters, other schemes or whitespace,
 * very long values, none), `Content-Type` and `X-Request-Id` (long, control characters). Proves:
 * no answer is a 5xx; errors have the shape of their path; a request gets past auth only when the
 * header carries, as its one bearer token, a live credential the route takes, and the exact
 * `Bearer <credential>` always does; a 401 says `WWW-Authenticate: Bearer`; the answer's request
 * id is always a safe one, the client's own when it was safe (a 101 upgrade carries none). Also, in workerd where the
 * constant-time compare exists: only the exact credential verifies against its hash.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { issueCredential, parseCredential, readBearer, verifyCredential } from '../../control-plane/auth/credentials.ts'
import { CreateApiKeyResponse } from '../../protocol/index.ts'
import { logTotal, runProperty, seedFrom } from '../support/property-run.ts'
import type { PropertyRun } from '../support/property-run.ts'
import { createNode } from './agent-socket.ts'
import { readAnswer } from './answer-rules.ts'
import { ADMIN_TOKEN, call, uniqueName } from './support.ts'

const seed = seedFrom(inject('fuzzSeed'))
const runs: PropertyRun[] = []
/** Both outcomes must occur, or the property proved nothing. */
const outcomes = { passed: 0, refused: 0 }

type Wants = 'nothing' | 'inference' | 'admin' | 'node'

interface SampleRoute {
  method: string
  path: string
  wants: Wants
  body?: string
  upgrade?: true
}

const ROUTES: readonly SampleRoute[] = [
  { method: 'GET', path: '/health', wants: 'nothing' },
  { method: 'GET', path: '/v2/no-such-route', wants: 'nothing' },
  { method: 'GET', path: '/v1/models', wants: 'inference' },
  {
    method: 'POST',
    path: '/v1/chat/completions',
    wants: 'inference',
    body: JSON.stringify({ model: uniqueName('absent'), messages: [{ role: 'user', content: 'Hi' }] }),
  },
  { method: 'GET', path: '/v2/pools', wants: 'admin' },
  { method: 'GET', path: `/v2/nodes/${uniqueName('node_absent')}`, wants: 'admin' },
  // An invalid body: a request that passes auth is refused by validation and creates nothing.
  { method: 'POST', path: '/v2/api-keys', wants: 'admin', body: '{"name":""}' },
  { method: 'GET', path: '/v2/agent/connect', wants: 'node', upgrade: true },
]

/** The live credentials, and which of them each kind of route takes. */
const live = { admin: ADMIN_TOKEN, inference: '', adminKey: '', node: '', revokedKey: '' }
function takenBy(wants: Wants): string[] {
  if (wants === 'inference') return [live.inference]
  if (wants === 'admin') return [live.admin, live.adminKey]
  if (wants === 'node') return [live.node]
  return []
}

/**
 * Any ASCII character a header value can hold, control characters included (no NUL, CR or LF).
 * Bytes past 0x7F are left out: the in-process fetch re-encodes them as UTF-8 and warns per request.
 */
const headerChar = fc
  .integer({ min: 1, max: 127 })
  .filter((c) => c !== 10 && c !== 13)
  .map((c) => String.fromCharCode(c))
const headerText = (maxLength: number) => fc.string({ unit: headerChar, maxLength })

function authorizationValues(): fc.Arbitrary<string | null> {
  const credentials = [live.admin, live.inference, live.adminKey, live.node, live.revokedKey]
  const credential = fc.constantFrom(...credentials)
  return fc.oneof(
    fc.constant(null),
    headerText(120),
    headerText(120).map((rest) => `Bearer ${rest}`),
    // Almost valid: the right prefixes and lengths, or one off, with ids nobody issued.
    fc
      .tuple(
        fc.constantFrom('llk', 'lln', 'llx', 'LLK'),
        fc.constantFrom('key_', 'node_', 'key-'),
        fc.stringMatching(/^[A-Za-z0-9_-]{11,13}$/),
        fc.stringMatching(/^[A-Za-z0-9_-]{42,44}$/),
      )
      .map(([prefix, kind, id, secret]) => `Bearer ${prefix}.${kind}${id}.${secret}`),
    // A live credential with one character changed, added or dropped.
    fc.tuple(credential, fc.nat(), fc.constantFrom('', 'A', '.', '_', '-', '~'), fc.boolean()).map(([secret, at, put, drop]) => {
      const i = at % (secret.length + 1)
      return `Bearer ${secret.slice(0, i)}${put}${secret.slice(i + (drop ? 1 : 0))}`
    }),
    // A live credential under other schemes or with whitespace around or inside.
    fc
      .tuple(
        fc.constantFrom('Bearer ', 'bearer ', 'BEARER\t', 'Bearer  ', 'Bearer\t\t', '', 'Token ', 'Basic ', 'Bearer', ' Bearer '),
        credential,
        fc.constantFrom('', ' ', '\t', '  ', ' x', ',', '\u000b', '\u000c'),
      )
      .map(([scheme, secret, after]) => `${scheme}${secret}${after}`),
    fc.tuple(fc.integer({ min: 1_000, max: 16_000 }), fc.constantFrom('A', 'llk.', ' ')).map(([length, unit]) => `Bearer ${unit.repeat(length)}`),
  )
}

const contentTypes = fc.oneof(
  fc.constant(null),
  fc.constantFrom(
    'application/json',
    'text/plain',
    'application/json; charset=utf-16',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    '*/*',
  ),
  headerText(200),
)
const SAFE_REQUEST_ID = /^[\w\-=]{1,255}$/
const requestIds = fc.oneof(
  fc.constant(null),
  fc.stringMatching(SAFE_REQUEST_ID),
  fc.integer({ min: 256, max: 8_000 }).map((length) => 'r'.repeat(length)),
  headerText(300),
  fc.constantFrom('\u0001\u0002', 'a\tb', '<script>', '../../etc', 'id\u007f'),
)

/** The headers as the Worker sees them: a value loses its leading and trailing whitespace. */
function headersOf(route: SampleRoute, authorization: string | null, contentType: string | null, requestId: string | null): Headers {
  const headers = new Headers()
  if (authorization !== null) headers.set('Authorization', authorization)
  if (contentType !== null) headers.set('Content-Type', contentType)
  if (requestId !== null) headers.set('X-Request-Id', requestId)
  if (route.upgrade) headers.set('Upgrade', 'websocket')
  return headers
}

/** The one token of a `Bearer` header: any whitespace around it, nothing else. */
function bearerToken(value: string | null): string | null {
  const match = value === null ? null : /^bearer\s+(\S+)\s*$/i.exec(value)
  return match?.[1] ?? null
}

async function checkRequest(route: SampleRoute, authorization: string | null, contentType: string | null, requestId: string | null): Promise<void> {
  const headers = headersOf(route, authorization, contentType, requestId)
  const response = await exports.default.fetch(`https://llorch.test${route.path}`, {
    method: route.method,
    headers,
    ...(route.body ? { body: route.body } : {}),
  })
  response.webSocket?.accept()
  response.webSocket?.close(1000, 'fuzzed request done')
  const answer = await readAnswer(response, route.path)
  const what = `${route.method} ${route.path} with Authorization ${JSON.stringify(headers.get('Authorization'))} answered ${answer.status} ${answer.code ?? ''}`

  const sent = headers.get('Authorization')
  const refused = answer.status === 401 || answer.status === 403
  if (refused) outcomes.refused += 1
  else outcomes.passed += 1
  const token = bearerToken(sent)
  const takes = takenBy(route.wants)
  if (route.wants === 'nothing') expect(refused, what).toBe(false)
  else if (!refused) expect(takes, `${what}: got past auth without a credential the route takes`).toContain(token)
  if (takes.some((credential) => sent === `Bearer ${credential}`)) expect(refused, `${what}: refused a live credential`).toBe(false)
  if (answer.status === 401) expect(response.headers.get('WWW-Authenticate'), what).toBe('Bearer')

  // The 101 of an agent's upgrade is the NodeObject's own answer, passed through without one.
  if (answer.status === 101) return
  const answeredId = response.headers.get('X-Request-Id') ?? ''
  expect(answeredId, what).toMatch(SAFE_REQUEST_ID)
  const askedId = headers.get('X-Request-Id')
  if (askedId !== null && SAFE_REQUEST_ID.test(askedId)) expect(answeredId, what).toBe(askedId)
}

async function issueKey(scopes: string[]): Promise<{ id: string; key: string }> {
  return CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('fuzz'), scopes } })).json())
}

beforeAll(async () => {
  live.inference = (await issueKey(['inference'])).key
  live.adminKey = (await issueKey(['admin'])).key
  live.node = (await createNode()).token
  const revoked = await issueKey(['inference', 'admin'])
  expect((await call('DELETE', `/v2/api-keys/${revoked.id}`)).status).toBe(200)
  live.revokedKey = revoked.key
})

afterAll(() => logTotal('headers', runs))

describe('request headers under fuzzing', () => {
  it('lets a request past auth only with a live credential the route takes, and never answers 5xx', async () => {
    const property = fc.asyncProperty(fc.constantFrom(...ROUTES), authorizationValues(), contentTypes, requestIds, checkRequest)
    runs.push(await runProperty('headers on sample routes', property, { numRuns: 3_000, seed }))
    expect(outcomes.passed).toBeGreaterThan(0)
    expect(outcomes.refused).toBeGreaterThan(0)
  })

  it('verifies only the exact credential against its hash, whatever the header holds', async () => {
    const credential = await issueCredential('api_key')
    const value = fc.oneof(
      headerText(200),
      fc.tuple(fc.constantFrom('Bearer ', 'bearer\t', 'Basic ', ''), fc.string({ maxLength: 80 })).map(([scheme, rest]) => scheme + rest),
      fc
        .tuple(fc.nat({ max: credential.secret.length }), fc.constantFrom('', 'A', '.', '_', ' ', '~', 'lln.'), fc.boolean())
        .map(([at, put, drop]) => credential.secret.slice(0, at) + put + credential.secret.slice(at + (drop ? 1 : 0))),
    )
    const property = fc.asyncProperty(value, async (raw) => {
      const token = readBearer(raw)
      if (token !== null) expect(token).toMatch(/^\S+$/)
      const parsed = parseCredential(raw)
      if (parsed !== null) expect(parsed).toEqual({ kind: raw.startsWith('llk.') ? 'api_key' : 'node', id: raw.split('.')[1], raw })
      const verifies = parsed !== null && (await verifyCredential(parsed.raw, credential.hash))
      expect(verifies).toBe(raw === credential.secret)
    })
    runs.push(await runProperty('credential parsing and verification', property, { numRuns: 1_000, seed }))
  })
})
