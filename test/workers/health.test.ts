import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { CreateApiKeyResponse, MAX_TOKENS_LIMIT } from '../../protocol/index.ts'
import { call } from './support.ts'

describe('GET /health', () => {
  it('answers status and version without credentials', async () => {
    const response = await exports.default.fetch('https://llorch.test/health')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+/) })
  })
})

describe('error shapes', () => {
  it('answers a /v1 request without a key with 401 in the OpenAI error shape', async () => {
    const response = await exports.default.fetch('https://llorch.test/v1/nope')
    expect(response.status).toBe(401)
    expect(response.headers.get('WWW-Authenticate')).toBe('Bearer')
    expect(await response.json()).toEqual({
      error: { message: 'missing credential: send "Authorization: Bearer <key>"', type: 'authentication_error', code: 'unauthorized', param: null },
    })
  })

  it('answers an unknown /v1 route with 404 in the OpenAI error shape', async () => {
    const created = await call('POST', '/v2/api-keys', { body: { name: 'health-test' } })
    const { key } = CreateApiKeyResponse.parse(await created.json())
    const response = await exports.default.fetch('https://llorch.test/v1/nope', { headers: { Authorization: `Bearer ${key}` } })
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({ error: { message: 'no route for GET /v1/nope', type: 'invalid_request_error', code: 'not_found', param: null } })
  })

  it('answers an unknown route elsewhere with the native error shape', async () => {
    const response = await exports.default.fetch('https://llorch.test/v2/nope', { headers: { Authorization: 'Bearer test-admin-token-0123456789abcdef' } })
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: { code: 'not_found', message: 'no route for GET /v2/nope' } })
  })

  it('answers an oversized body with 413', async () => {
    const response = await exports.default.fetch('https://llorch.test/v2/nodes', {
      method: 'POST',
      headers: { Authorization: 'Bearer test-admin-token-0123456789abcdef', 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(5 * 1024 * 1024) }),
    })
    expect(response.status).toBe(413)
    expect(await response.json()).toMatchObject({ error: { code: 'payload_too_large' } })
  })

  it('answers malformed JSON with 400 saying where it broke', async () => {
    const response = await exports.default.fetch('https://llorch.test/v2/nodes', {
      method: 'POST',
      headers: { Authorization: 'Bearer test-admin-token-0123456789abcdef', 'Content-Type': 'application/json' },
      body: '{\n  "name": "gpu-1",\n  "labels": {,}\n}',
    })
    expect(response.status).toBe(400)
    const { error } = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).parse(await response.json())
    expect(error.code).toBe('invalid_request')
    expect(error.message).toMatch(/^request body is not valid JSON: .*position 34 \(line 3 column 14\)/)
  })

  it("answers a GET on a POST route with 405 and Allow, in the route's error shape", async () => {
    const created = await call('POST', '/v2/api-keys', { body: { name: 'method-test' } })
    const { key } = CreateApiKeyResponse.parse(await created.json())
    const response = await exports.default.fetch('https://llorch.test/v1/chat/completions', { headers: { Authorization: `Bearer ${key}` } })
    expect(response.status).toBe(405)
    expect(response.headers.get('Allow')).toBe('POST')
    expect(await response.json()).toEqual({
      error: { message: 'GET is not allowed on /v1/chat/completions; use POST', type: 'invalid_request_error', code: 'method_not_allowed', param: null },
    })

    const admin = await exports.default.fetch('https://llorch.test/v2/nodes/node_x', {
      method: 'POST',
      headers: { Authorization: 'Bearer test-admin-token-0123456789abcdef' },
    })
    expect(admin.status).toBe(405)
    expect(admin.headers.get('Allow')).toBe('GET, DELETE, HEAD')
  })

  it('refuses a max_tokens no engine could serve with 400 naming the field and the limit', async () => {
    const created = await call('POST', '/v2/api-keys', { body: { name: 'max-tokens-test' } })
    const { key } = CreateApiKeyResponse.parse(await created.json())
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const response = await exports.default.fetch('https://llorch.test/v1/chat/completions', {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'any-model', messages: [{ role: 'user', content: 'hi' }], [field]: 100_000_000 }),
      })
      expect(response.status).toBe(400)
      const { error } = z.object({ error: z.object({ code: z.string(), message: z.string(), param: z.string().nullable() }) }).parse(await response.json())
      expect(error).toMatchObject({ code: 'invalid_request', param: field })
      expect(error.message).toContain(String(MAX_TOKENS_LIMIT))
    }
  })
})
