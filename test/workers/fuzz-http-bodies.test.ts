/**
 * Property-based fuzzing of the request bodies of the generation routes and the admin routes,
 * sent with valid credentials so that validation, not auth, answers. Proves, for thousands of
 * generated bodies (valid ones, mutated ones with wrong types for every known field and unknown
 * fields, arbitrary JSON, deep nesting, truncated and non-JSON text, invalid UTF-8, empty bodies,
 * bodies at the size limit): no answer is a 5xx, every refusal is a 400 `invalid_request` (413
 * past the limit) in the error shape of its path, and the Worker accepts exactly what the route's
 * zod schema accepts. Accepted generation bodies name pools that do not exist, so they end in
 * 404 `model_not_found` at the PoolObject: a 503 for a pool without replicas is not what is tested.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { z } from 'zod'
import { MAX_BODY_BYTES } from '../../control-plane/app.ts'
import {
  ChatCompletionRequest,
  CompletionRequest,
  CreateChatTask,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateNodeRequest,
  MAX_JSON_DEPTH,
  PatchApiKeyRequest,
  PatchPoolRequest,
  PoolCommandRequest,
  nestsDeeperThan,
} from '../../protocol/index.ts'
import type { Payload } from '../support/json-mutations.ts'
import { byteLength, decodedText, hostilePayloads, toJsonText } from '../support/json-mutations.ts'
import { logTotal, runProperty, seedFrom } from '../support/property-run.ts'
import type { PropertyRun } from '../support/property-run.ts'
import { createNode, hello, open } from './agent-socket.ts'
import { readAnswer } from './answer-rules.ts'
import { ADMIN_TOKEN, call, uniqueName } from './support.ts'

const seed = seedFrom(inject('fuzzSeed'))
const runs: PropertyRun[] = []

/**
 * A pool id no pool has: valid generation bodies get as far as the PoolObject and a 404. Mostly
 * a few names whose PoolObjects stay warm; each new name costs an object and a registry read.
 */
const absentModel = fc.oneof(
  { weight: 9, arbitrary: fc.constantFrom(uniqueName('absent'), uniqueName('absent'), uniqueName('absent')) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,24}$/).map((suffix) => `absent-${suffix}`) },
)

const generationFields = {
  stream: fc.boolean(),
  stream_options: fc.constant({ include_usage: true }),
  max_tokens: fc.constant(16),
  temperature: fc.constant(0.7),
  top_p: fc.constant(0.9),
  stop: fc.constant(['\n']),
  seed: fc.constant(7),
  n: fc.constant(1),
  priority: fc.constantFrom('interactive', 'batch'),
}

const chatBody = fc.record({
  model: absentModel,
  messages: fc.constant([{ role: 'user', content: 'Hello', name: 'u' }]),
  max_completion_tokens: fc.constant(16),
  ...generationFields,
})
const completionBody = fc.record({ model: absentModel, prompt: fc.constantFrom<string | string[]>('Once upon', ['Once upon']), ...generationFields })

/** How the route must answer a body its schema accepts. */
interface Accepted {
  statuses: readonly number[]
  code?: string
}

interface BodyRoute {
  method: 'POST' | 'PATCH'
  path: string
  token: () => string
  schema: z.ZodObject
  base: fc.Arbitrary<object>
  /** Schema fields the base leaves out because any value of theirs is refused. */
  refusedFields?: readonly string[]
  /** What an empty body stands for, where the route allows one. */
  emptyAs?: unknown
  accepted: Accepted
  numRuns: number
}

let inferenceKey = ''
let existingNodeName = ''
let poolWithReplica = ''
/** A key of its own for PATCH, so the limits the fuzzer sets never touch the key it sends inference with. */
let patchedKeyId = ''
/** Every limit a key can have, generous enough that nothing the fuzzer sends is refused by them. */
const KEY_LIMITS = { requests_per_minute: 1_000_000, tokens_per_minute: 1e10, max_concurrent: 100_000, token_budget: { tokens: 1e12, period: 'month' } }
const absentPool = uniqueName('absent-pool')

const ROUTES: readonly BodyRoute[] = [
  {
    method: 'POST',
    path: '/v1/chat/completions',
    token: () => inferenceKey,
    schema: ChatCompletionRequest,
    base: chatBody,
    accepted: { statuses: [404], code: 'model_not_found' },
    numRuns: 1_200,
  },
  {
    method: 'POST',
    path: '/v1/completions',
    token: () => inferenceKey,
    schema: CompletionRequest,
    base: completionBody,
    accepted: { statuses: [404], code: 'model_not_found' },
    numRuns: 700,
  },
  {
    method: 'POST',
    path: '/v2/tasks',
    token: () => inferenceKey,
    // The base names its route, so the shape never has to decide: the chat schema is the oracle.
    schema: CreateChatTask,
    base: chatBody.map((body) => ({ ...body, endpoint: 'chat', attach_within_ms: 1_000 })),
    accepted: { statuses: [404], code: 'model_not_found' },
    numRuns: 500,
  },
  {
    method: 'POST',
    path: '/v2/nodes',
    token: () => ADMIN_TOKEN,
    schema: CreateNodeRequest,
    base: fc.constant({}).map(() => ({ name: existingNodeName, labels: { rack: 'a' } })),
    // The base names a node that exists; a mutated name that is valid creates one.
    accepted: { statuses: [201, 409] },
    numRuns: 800,
  },
  {
    method: 'POST',
    path: '/v2/api-keys',
    token: () => ADMIN_TOKEN,
    schema: CreateApiKeyRequest,
    base: fc.constant({ name: 'fuzz-app', scopes: ['inference', 'admin'], limits: KEY_LIMITS }),
    accepted: { statuses: [201] },
    numRuns: 600,
  },
  {
    method: 'PATCH',
    path: '/v2/api-keys/{key}',
    token: () => ADMIN_TOKEN,
    schema: PatchApiKeyRequest,
    base: fc.constant({ limits: KEY_LIMITS }),
    accepted: { statuses: [200] },
    numRuns: 500,
  },
  {
    method: 'PATCH',
    path: '/v2/pools/{pool}',
    token: () => ADMIN_TOKEN,
    schema: PatchPoolRequest,
    base: fc.constant({
      queue_capacity: 64,
      preload_mode: 'eager',
      idle_drain_ms: null,
      default_priority: 'interactive',
      first_token_timeout_ms: 60_000,
      idle_timeout_ms: 30_000,
      queue_timeout_ms: 120_000,
      run_timeout_ms: 600_000,
      scale_out_wait_ms: 10_000,
      batch_aging_ms: 30_000,
      batch_slot_share: 1,
      key_limits: KEY_LIMITS,
    }),
    accepted: { statuses: [200] },
    numRuns: 800,
  },
  {
    method: 'POST',
    path: `/v2/pools/${absentPool}/drain`,
    token: () => ADMIN_TOKEN,
    schema: PoolCommandRequest,
    base: fc.constant({ deadline_ms: 1_000 }),
    emptyAs: {},
    accepted: { statuses: [404], code: 'not_found' },
    numRuns: 1_000,
  },
]

function pathOf(route: BodyRoute): string {
  return route.path.replace('{pool}', poolWithReplica).replace('{key}', patchedKeyId)
}

type Verdict = { kind: 'too_large' } | { kind: 'unreadable' } | { kind: 'schema'; firstPath: string } | { kind: 'accepted' }

/** What the route must make of `payload`, from its schema alone: the oracle of every property here. */
function verdictOf(route: BodyRoute, payload: Payload): Verdict {
  if (byteLength(payload) > MAX_BODY_BYTES) return { kind: 'too_large' }
  const text = decodedText(payload)
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return { kind: 'unreadable' }
  let json: unknown
  if (text.trim() === '' && route.emptyAs !== undefined) json = route.emptyAs
  else {
    try {
      json = JSON.parse(text)
    } catch {
      return { kind: 'unreadable' }
    }
  }
  const parsed = route.schema.safeParse(json)
  if (parsed.success) return { kind: 'accepted' }
  return { kind: 'schema', firstPath: (parsed.error.issues[0]?.path ?? []).join('.') }
}

async function send(route: BodyRoute, payload: Payload): Promise<Response> {
  return exports.default.fetch(`https://llorch.test${pathOf(route)}`, {
    method: route.method,
    headers: { Authorization: `Bearer ${route.token()}`, 'Content-Type': 'application/json' },
    body: payload,
  })
}

/** Verdicts seen per route: a route whose bodies were all refused (or all taken) proved little. */
const verdictsSeen = new Map<BodyRoute, Set<Verdict['kind']>>()

async function checkAnswer(route: BodyRoute, payload: Payload): Promise<void> {
  const verdict = verdictOf(route, payload)
  verdictsSeen.set(route, (verdictsSeen.get(route) ?? new Set()).add(verdict.kind))
  const answer = await readAnswer(await send(route, payload), pathOf(route))
  const what = `${route.method} ${route.path} (${verdict.kind}) answered ${answer.status} ${answer.code ?? ''}: ${answer.message ?? ''}`
  switch (verdict.kind) {
    case 'too_large':
      expect({ status: answer.status, code: answer.code }, what).toEqual({ status: 413, code: 'payload_too_large' })
      return
    case 'unreadable':
      expect({ status: answer.status, code: answer.code }, what).toEqual({ status: 400, code: 'invalid_request' })
      return
    case 'schema':
      expect({ status: answer.status, code: answer.code }, what).toEqual({ status: 400, code: 'invalid_request' })
      // The refusal names the field at fault: in the message always, and as `param` on /v1/*.
      expect(answer.message, what).toContain('invalid request body')
      if (route.path.startsWith('/v1/')) expect(answer.param, what).toEqual(expect.any(String))
      return
    case 'accepted':
      expect(route.accepted.statuses, what).toContain(answer.status)
      if (route.accepted.code) expect(answer.code, what).toBe(route.accepted.code)
      return
  }
}

/** A valid body with one string grown so that the whole body lands just inside or just past the limit. */
function atTheLimit(base: fc.Arbitrary<object>): fc.Arbitrary<string> {
  const margin = 64 * 1024
  const target = fc.oneof(
    fc.integer({ min: MAX_BODY_BYTES - margin, max: MAX_BODY_BYTES }),
    fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES + margin }),
  )
  return fc.tuple(base, target, fc.nat()).map(([doc, size, pick]) => {
    const grown: Record<string, unknown> = structuredClone({ ...doc, pad: '' })
    // Either a field of the body or an unknown one: `pad`.
    const stringKeys = Object.keys(grown).filter((key) => typeof grown[key] === 'string')
    const key = stringKeys[pick % stringKeys.length] ?? 'pad'
    grown[key] = ''
    grown[key] = 'x'.repeat(Math.max(0, size - toJsonText(grown).length))
    return toJsonText(grown)
  })
}

beforeAll(async () => {
  inferenceKey = CreateApiKeyResponse.parse(
    await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('fuzz'), scopes: ['inference'] } })).json(),
  ).key
  patchedKeyId = CreateApiKeyResponse.parse(
    await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('fuzz-patched'), scopes: ['inference'] } })).json(),
  ).id
  existingNodeName = uniqueName('fuzz-node')
  expect((await call('POST', '/v2/nodes', { body: { name: existingNodeName } })).status).toBe(201)
  // PATCH needs a pool that exists: an agent offers one and leaves.
  poolWithReplica = uniqueName('fuzz-pool')
  const agent = await open((await createNode()).token)
  agent.send(hello({ replicas: [{ pool: poolWithReplica, engine: 'openai', state: 'ready', slots: 1, slots_busy: 0, breaker_open: false }] }))
  expect(await agent.next()).toMatchObject({ type: 'welcome' })
  agent.ws.close(1000, 'done')
})

afterAll(() => logTotal('http bodies', runs))

describe('request bodies under fuzzing', () => {
  it('every route the fuzzer covers has a base body using every field its schema knows', () => {
    for (const route of ROUTES) {
      const base = fc.sample(route.base, { numRuns: 1, seed: 1 })[0] ?? {}
      expect([...Object.keys(base), ...(route.refusedFields ?? [])].sort(), `${route.method} ${route.path}`).toEqual(Object.keys(route.schema.shape).sort())
      expect(verdictOf(route, toJsonText(base)), `the base body of ${route.method} ${route.path} is valid`).toEqual({ kind: 'accepted' })
    }
  })

  for (const route of ROUTES) {
    it(`answers every body on ${route.method} ${route.path} below 500, as its schema decides`, async () => {
      runs.push(
        await runProperty(
          `bodies ${route.method} ${route.path}`,
          fc.asyncProperty(hostilePayloads(route.base, route.refusedFields), (payload) => checkAnswer(route, payload)),
          { numRuns: route.numRuns, seed },
        ),
      )
      expect([...(verdictsSeen.get(route) ?? [])].sort()).toEqual(['accepted', 'schema', 'unreadable'])
    })
  }

  it('answers bodies just inside and just past the size limit with the schema verdict or 413', async () => {
    for (const route of ROUTES) {
      runs.push(
        await runProperty(
          `bodies at the limit ${route.method} ${route.path}`,
          fc.asyncProperty(atTheLimit(route.base), (payload) => checkAnswer(route, payload)),
          { numRuns: 6, seed },
        ),
      )
    }
  })
})
