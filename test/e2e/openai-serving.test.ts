import { createClient } from '@libsql/client'
import OpenAI from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, expectedText, openaiClient as client, servePool as serve } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'

describe('OpenAI-compatible API through the official openai client', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack
  beforeEach(async () => {
    stack = await startStack({ heartbeatIntervalMs: 200 })
  })
  afterEach(async () => {
    await stack.stop()
  })

  const servePool = (id: string, options?: Parameters<typeof serve>[3]) => serve(cleanup, stack, id, options)

  it('streams and returns chat completions and completions with the engine tokens in order and correct usage', async () => {
    const { engineUrl } = await servePool('chat-model', { fakeArgs: ['--tokens', '12'] })
    const openai = client(stack, (await createKey(stack)).key)

    expect((await openai.models.list()).data.map((m) => m.id)).toEqual(['chat-model'])

    const stream = await openai.chat.completions.create({
      model: 'chat-model',
      messages: [{ role: 'user', content: 'three words here' }],
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let role: string | undefined
    let finish: string | null = null
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role
      text += chunk.choices[0]?.delta.content ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
      if (chunk.usage) usage = chunk.usage
    }
    expect(role).toBe('assistant')
    expect(text).toBe(expectedText(12))
    expect(finish).toBe('stop')
    expect(usage).toEqual({ prompt_tokens: 3, completion_tokens: 12, total_tokens: 15 })

    // `priority` orders llorch's queue; the engine never sees it.
    const withPriority = { model: 'chat-model', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 5, priority: 'batch' }
    const whole = await openai.chat.completions.create(withPriority)
    expect((await fakeEngineStats(engineUrl)).last_body).not.toHaveProperty('priority')
    expect(whole.choices[0]?.message).toMatchObject({ role: 'assistant', content: expectedText(5) })
    expect(whole.choices[0]?.finish_reason).toBe('length')
    expect(whole.usage).toEqual({ prompt_tokens: 1, completion_tokens: 5, total_tokens: 6 })

    const completion = await openai.completions.create({ model: 'chat-model', prompt: 'once upon a time', max_tokens: 4 })
    expect(completion.choices[0]?.text).toBe(expectedText(4))
    expect(completion.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 })

    let streamed = ''
    for await (const chunk of await openai.completions.create({ model: 'chat-model', prompt: 'go', stream: true })) streamed += chunk.choices[0]?.text ?? ''
    expect(streamed).toBe(expectedText(12))

    // One usage row per finished task, written after its last token.
    const registry = createClient({ url: stack.libsql.url })
    const rows = await waitFor(
      async () => {
        const result = await registry.execute(`SELECT prompt_tokens, completion_tokens, api_key_id FROM usage WHERE pool_id = 'chat-model' ORDER BY id`)
        return result.rows.length === 4 ? result.rows : null
      },
      { timeoutMs: CEILING_MS, message: 'four usage rows' },
    )
    expect(rows.map((r) => [Number(r.prompt_tokens), Number(r.completion_tokens)])).toEqual([
      [3, 12],
      [1, 5],
      [4, 4],
      [1, 12],
    ])
    expect(new Set(rows.map((r) => r.api_key_id)).size).toBe(1)
    registry.close()
  })

  it('places a task again, invisibly, when its node is lost before the first token', async () => {
    const hanging = await servePool('failover-model', { slots: 1, name: 'node-hangs', fakeArgs: ['--hang'] })
    const openai = client(stack, (await createKey(stack)).key)
    const reply = openai.chat.completions.create({ model: 'failover-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6 })
    await waitFor(async () => (await fakeEngineStats(hanging.engineUrl)).active === 1, {
      timeoutMs: CEILING_MS,
      message: 'the request hanging on the first node',
    })
    await servePool('failover-model', { slots: 1, name: 'node-healthy', fakeArgs: ['--tokens', '6'] })
    process.kill(hanging.agent.pid, 'SIGKILL')
    const answer = await reply
    expect(answer.choices[0]?.message.content).toBe(expectedText(6))
    expect(answer.usage?.completion_tokens).toBe(6)
  })

  it('starts an on-demand replica when a task arrives and serves the task once it is ready', async () => {
    const agent = await startLinkedAgent(cleanup, stack, {
      name: 'node-lazy',
      pools: [fakePoolInput('lazy-model', ['--load-ms', '300', '--tokens', '3'], { preload: 'on-demand' })],
    })
    await waitFor(async () => (await getPool(stack, 'lazy-model'))?.replicas[0]?.state === 'stopped', {
      timeoutMs: CEILING_MS,
      message: 'a stopped replica registered',
    })
    const openai = client(stack, (await createKey(stack)).key)
    const reply = await openai.chat.completions.create({ model: 'lazy-model', messages: [{ role: 'user', content: 'wake up' }] })
    expect(reply.choices[0]?.message.content).toBe(expectedText(3))
    expect(agent.output()).toContain('"event":"link.command"')
    expect((await getPool(stack, 'lazy-model'))?.state).toBe('ready')
  })

  it('shares load between two replicas on two agents', async () => {
    const first = await servePool('shared-model', { slots: 2, name: 'node-a', fakeArgs: ['--tokens', '20', '--tokens-per-second', '100'] })
    const second = await servePool('shared-model', { slots: 2, name: 'node-b', fakeArgs: ['--tokens', '20', '--tokens-per-second', '100'] })
    const openai = client(stack, (await createKey(stack)).key)
    const replies = await Promise.all(
      Array.from({ length: 4 }, () => openai.chat.completions.create({ model: 'shared-model', messages: [{ role: 'user', content: 'hi' }] })),
    )
    for (const reply of replies) expect(reply.choices[0]?.message.content).toBe(expectedText(20))
    const [a, b] = await Promise.all([fakeEngineStats(first.engineUrl), fakeEngineStats(second.engineUrl)])
    expect(a.completed).toBeGreaterThan(0)
    expect(b.completed).toBeGreaterThan(0)
    expect(a.completed + b.completed).toBe(4)
  })

  it('answers 429 with Retry-After when the one slot is busy and the queue of one is full', async () => {
    await servePool('busy-model', { slots: 1, fakeArgs: ['--tokens', '400', '--tokens-per-second', '100'] })
    expect((await stack.admin('PATCH', '/v2/pools/busy-model', { queue_capacity: 1 })).status).toBe(200)
    const { key } = await createKey(stack)
    const openai = client(stack, key)
    const running = await openai.chat.completions.create({ model: 'busy-model', messages: [{ role: 'user', content: 'a' }], stream: true })
    const queued = openai.chat.completions.create({ model: 'busy-model', messages: [{ role: 'user', content: 'b' }], max_tokens: 2 })
    await waitFor(async () => (await getPool(stack, 'busy-model'))?.queue_depth === 1, { timeoutMs: CEILING_MS, message: 'one task queued' })

    const third = await fetch(new URL('/v1/chat/completions', stack.url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'busy-model', messages: [{ role: 'user', content: 'c' }] }),
    })
    expect(third.status).toBe(429)
    expect(Number(third.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1)
    expect(await third.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'queue_full' } })
    await expect(openai.chat.completions.create({ model: 'busy-model', messages: [{ role: 'user', content: 'c' }] })).rejects.toBeInstanceOf(
      OpenAI.RateLimitError,
    )

    running.controller.abort()
    expect((await queued).choices[0]?.message.content).toBe(expectedText(2))
  })

  it('aborts the engine request within a second when the client aborts, and frees the slot at once', async () => {
    const { engineUrl } = await servePool('abort-model', { slots: 1, fakeArgs: ['--tokens', '1000', '--tokens-per-second', '50'] })
    const openai = client(stack, (await createKey(stack)).key)
    const stream = await openai.chat.completions.create({ model: 'abort-model', messages: [{ role: 'user', content: 'long' }], stream: true })
    let chunks = 0
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) chunks += 1
      if (chunks >= 3) break
    }
    const abortedAt = Date.now()
    await waitFor(async () => (await fakeEngineStats(engineUrl)).aborted === 1, {
      timeoutMs: 1_000,
      intervalMs: 10,
      message: 'the engine recording the abort within 1 s',
    })
    expect(Date.now() - abortedAt).toBeLessThan(1_000)

    const next = await openai.chat.completions.create({ model: 'abort-model', messages: [{ role: 'user', content: 'next' }], max_tokens: 3 })
    expect(next.choices[0]?.message.content).toBe(expectedText(3))
    const pool = await getPool(stack, 'abort-model')
    expect(pool?.slots_busy).toBe(0)
  })

  it('refuses a deeply nested body with 400 before admission, so it holds no slot', async () => {
    await servePool('nested-model', { slots: 1 })
    const { key } = await createKey(stack)
    const deep = `{"model":"nested-model","messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(5_000)}${']'.repeat(5_000)}}`
    for (let i = 0; i < 4; i++) {
      const response = await fetch(new URL('/v1/chat/completions', stack.url), {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: deep,
      })
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringContaining('nests deeper') } })
    }
    expect((await getPool(stack, 'nested-model'))?.slots_busy).toBe(0)
    const openai = client(stack, key)
    const next = await openai.chat.completions.create({ model: 'nested-model', messages: [{ role: 'user', content: 'next' }], max_tokens: 2 })
    expect(next.choices[0]?.message.content).toBe(expectedText(2))
  })

  it('refuses missing, revoked and inference-less keys, an unknown model and a malformed body', async () => {
    await servePool('auth-model')
    const url = new URL('/v1/chat/completions', stack.url)
    const body = JSON.stringify({ model: 'auth-model', messages: [{ role: 'user', content: 'hi' }] })
    const post = (key: string | null, payload = body) =>
      fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) }, body: payload })

    const anonymous = await post(null)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/)
    const traced = await fetch(url, { method: 'POST', headers: { 'X-Request-Id': 'trace-abc-123' }, body })
    expect(traced.headers.get('X-Request-Id')).toBe('trace-abc-123')
    const adminOnly = await createKey(stack, ['admin'])
    const refused = await post(adminOnly.key)
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ error: { type: 'permission_error', code: 'forbidden' } })

    const revoked = await createKey(stack)
    expect((await post(revoked.key)).status).toBe(200)
    expect((await stack.admin('DELETE', `/v2/api-keys/${revoked.id}`)).status).toBe(200)
    // Other isolates may trust a cached lookup for API_KEY_CACHE_TTL_MS; the ceiling covers it.
    await waitFor(async () => (await post(revoked.key)).status === 401, { timeoutMs: 10_000, intervalMs: 200, message: 'the revoked key refused' })

    const { key } = await createKey(stack)
    const malformed = await post(key, JSON.stringify({ model: 'auth-model', messages: [{ role: 'wizard', content: 'hi' }] }))
    expect(malformed.status).toBe(400)
    expect(await malformed.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_request', param: 'messages[0].role' } })

    const unknown = await post(key, JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }))
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ error: { code: 'model_not_found', param: 'model' } })

    const openai = client(stack, key)
    await expect(openai.chat.completions.create({ model: 'auth-model', messages: [] })).rejects.toBeInstanceOf(OpenAI.BadRequestError)
  })
})
