import { describe, expect, it } from 'vitest'
import { CreateApiKeyResponse, OpenAIErrorBody } from '../../protocol/index.ts'
import type { KeyLimits } from '../../protocol/index.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, servePool } from '../support/openai-stack.ts'
import { useProcessCleanup, waitFor } from '../support/processes.ts'

async function limitedKey(stack: Stack, limits: KeyLimits): Promise<{ id: string; key: string }> {
  const response = await stack.admin('POST', '/v2/api-keys', { name: 'limited', scopes: ['inference'], limits })
  expect(response.status).toBe(201)
  const created = CreateApiKeyResponse.parse(await response.json())
  expect(created.limits).toEqual(limits)
  return created
}

/** One chat completion as a plain client sends it, with what came back: status, headers, body. */
async function chat(stack: Stack, key: string, model: string, extra: Record<string, unknown> = {}) {
  const response = await fetch(new URL('/v1/chat/completions', stack.url), {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'two words' }], max_tokens: 4, ...extra }),
  })
  return { status: response.status, headers: response.headers, body: await response.text() }
}

/** The OpenAI error code of a refused request. */
const codeOf = (body: string) => OpenAIErrorBody.parse(JSON.parse(body)).error.code

describe('per-key limits', () => {
  const cleanup = useProcessCleanup()
  const stack = useStack()

  it('refuses a key over its requests, tokens or budget with the code naming the limit and Retry-After, while another key is served', async () => {
    await servePool(cleanup, stack(), 'limits-model', { fakeArgs: ['--tokens', '4'] })
    const other = await createKey(stack())
    const call = (key: string) => chat(stack(), key, 'limits-model')

    const rpm = await limitedKey(stack(), { requests_per_minute: 2 })
    const firstRpm = await call(rpm.key)
    expect(firstRpm.status).toBe(200)
    expect(firstRpm.headers.get('x-ratelimit-limit-requests')).toBe('2')
    expect(firstRpm.headers.get('x-ratelimit-remaining-requests')).toBe('1')
    expect((await call(rpm.key)).status).toBe(200)
    const overRpm = await call(rpm.key)
    expect(overRpm.status).toBe(429)
    expect(codeOf(overRpm.body)).toBe('rate_limit_rpm')
    expect(Number(overRpm.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1)
    expect(overRpm.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect((await call(other.key)).status).toBe(200)

    // Tokens are counted once a task ends: the key is refused as soon as its first reply is counted.
    const tpm = await limitedKey(stack(), { tokens_per_minute: 5 })
    const overTpm = await waitFor(
      async () => {
        const reply = await call(tpm.key)
        return reply.status === 429 ? reply : null
      },
      { timeoutMs: CEILING_MS, message: 'a refusal for tokens per minute' },
    )
    expect(codeOf(overTpm.body)).toBe('rate_limit_tpm')
    expect(Number(overTpm.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1)
    expect((await call(other.key)).status).toBe(200)

    const budget = await limitedKey(stack(), { token_budget: { tokens: 5, period: 'month' } })
    const overBudget = await waitFor(
      async () => {
        const reply = await call(budget.key)
        return reply.status === 429 ? reply : null
      },
      { timeoutMs: CEILING_MS, message: 'a refusal for the token budget' },
    )
    expect(OpenAIErrorBody.parse(JSON.parse(overBudget.body)).error).toMatchObject({ code: 'token_budget_exhausted', type: 'insufficient_quota' })
    expect(Number(overBudget.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1)
    expect((await call(other.key)).status).toBe(200)

    // PATCH replaces the key's limits: without them it is served again.
    const patched = await stack().admin('PATCH', `/v2/api-keys/${rpm.id}`, { limits: {} })
    expect(patched.status).toBe(200)
    expect((await call(rpm.key)).status).toBe(200)
    const invalid = await stack().admin('PATCH', `/v2/api-keys/${rpm.id}`, { limits: { requests_per_minute: 0 } })
    expect(invalid.status).toBe(400)
    expect(await invalid.text()).toContain('limits.requests_per_minute')

    // A pool default applies to keys that set no limit of their own.
    const policy = await stack().admin('PATCH', '/v2/pools/limits-model', { key_limits: { requests_per_minute: 1 } })
    expect(policy.status).toBe(200)
    const fresh = await createKey(stack())
    expect((await call(fresh.key)).status).toBe(200)
    const overDefault = await call(fresh.key)
    expect(overDefault.status).toBe(429)
    expect(codeOf(overDefault.body)).toBe('rate_limit_rpm')
  })

  it('refuses a key running its maximum of concurrent tasks, serves another key meanwhile, and serves the key again once its task ended', async () => {
    // Two slots, 20 tokens at 20 tokens/s: a task holds its slot for about a second.
    await servePool(cleanup, stack(), 'slow-model', { slots: 2, fakeArgs: ['--tokens', '20', '--tokens-per-second', '20'] })
    const limited = await limitedKey(stack(), { max_concurrent: 1 })
    const other = await createKey(stack())
    const long = { max_tokens: 20, stream: true }
    const running = fetch(new URL('/v1/chat/completions', stack().url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${limited.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'slow-model', messages: [{ role: 'user', content: 'hi' }], ...long }),
    })
    const stream = await running
    expect(stream.status).toBe(200)
    expect(stream.headers.get('x-ratelimit-remaining-concurrency')).toBe('0')

    const refused = await chat(stack(), limited.key, 'slow-model')
    expect(refused.status).toBe(429)
    expect(codeOf(refused.body)).toBe('rate_limit_concurrency')
    expect(refused.headers.get('Retry-After')).toBe('1')
    expect((await chat(stack(), other.key, 'slow-model')).status).toBe(200)

    expect(await stream.text()).toContain('data: [DONE]')
    await waitFor(async () => (await chat(stack(), limited.key, 'slow-model')).status === 200, {
      timeoutMs: CEILING_MS,
      message: 'the limited key served again',
    })
  })
})
