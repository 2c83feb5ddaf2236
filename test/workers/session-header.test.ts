/**
 * `X-Session-Id` and `user` under fuzzing on `/v1/chat/completions` (for a model nobody serves,
 * so an accepted one ends in 404 `model_not_found`): never a 5xx; printable ASCII of 1 to 256
 * characters passes, anything else is a 400 naming the header (or `user`).
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CreateApiKeyResponse, OpenAIErrorBody } from '../../protocol/index.ts'
import { SessionId } from '../../control-plane/answer/affinity-key.ts'
import { logTotal, runProperty, seedFrom } from '../support/property-run.ts'
import type { PropertyRun } from '../support/property-run.ts'
import { call, uniqueName } from './support.ts'
import { exports } from 'cloudflare:workers'

const seed = seedFrom(inject('fuzzSeed'))
const runs: PropertyRun[] = []
let inferenceKey = ''
const absentModel = uniqueName('absent-model')

/** Header values as a client can send them: any ASCII but NUL, CR and LF, up to past the bound. */
const headerChar = fc
  .integer({ min: 1, max: 127 })
  .filter((c) => c !== 10 && c !== 13)
  .map((c) => String.fromCharCode(c))
const sessionIds = fc.oneof(fc.string({ unit: headerChar, minLength: 1, maxLength: 300 }), fc.stringMatching(/^[\x21-\x7e]{250,260}$/))

async function chat(headers: Record<string, string>, body: Record<string, unknown> = {}) {
  const response = await exports.default.fetch('https://llorch.test/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: `Bearer ${inferenceKey}`, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ model: absentModel, messages: [{ role: 'user', content: 'hi' }], ...body }),
  })
  return { status: response.status, error: OpenAIErrorBody.parse(await response.json()).error }
}

beforeAll(async () => {
  inferenceKey = CreateApiKeyResponse.parse(
    await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('session'), scopes: ['inference'] } })).json(),
  ).key
})

afterAll(() => logTotal('session header', runs))

describe('X-Session-Id', () => {
  it('passes a printable session id of at most 256 characters and refuses any other with 400 naming the header', async () => {
    const seen = { passed: 0, refused: 0 }
    const property = fc.asyncProperty(sessionIds, async (raw) => {
      // Fetch trims a header value, as any client's would be.
      const value = raw.trim()
      if (value === '') return
      const { status, error } = await chat({ 'X-Session-Id': value })
      if (SessionId.safeParse(value).success) {
        expect({ status, code: error.code }).toEqual({ status: 404, code: 'model_not_found' })
        seen.passed += 1
      } else {
        expect({ status, code: error.code }).toEqual({ status: 400, code: 'invalid_request' })
        seen.refused += 1
        expect(error.message).toContain('X-Session-Id')
      }
    })
    runs.push(await runProperty('X-Session-Id values', property, { numRuns: 300, seed }))
    // Both outcomes occurred, or the property proved nothing.
    expect(seen.passed).toBeGreaterThan(0)
    expect(seen.refused).toBeGreaterThan(0)
  })

  it('refuses a `user` that is not a string of at most 256 characters with 400 naming it', async () => {
    for (const user of [42, 'u'.repeat(257), { id: 'x' }]) {
      const { status, error } = await chat({}, { user })
      expect({ status, code: error.code }).toEqual({ status: 400, code: 'invalid_request' })
      expect(error.message).toContain('user')
    }
    expect((await chat({}, { user: 'end-user-1' })).status).toBe(404)
  })
})
