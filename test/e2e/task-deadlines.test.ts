import { describe, expect, it } from 'vitest'
import { getPool } from '../support/linked-agent.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'
import { CEILING_MS, createKey, expectedText, servePool } from '../support/openai-stack.ts'

/** The deadlines these tests give their pools; the engine would stay silent forever. */
const DEADLINE_MS = 500

async function chat(stack: Stack, key: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(new URL('/v1/chat/completions', stack.url), {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }),
  })
}

describe('task deadlines', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack()

  it('answers 504 deadline_exceeded when the engine sends no first token in time, stops the engine request and frees the slot', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'hung-model', { slots: 1, fakeArgs: ['--hang'] })
    expect((await stack.admin('PATCH', '/v2/pools/hung-model', { first_token_timeout_ms: DEADLINE_MS })).status).toBe(200)
    const { key } = await createKey(stack)
    const startedAt = Date.now()
    const response = await chat(stack, key, { model: 'hung-model' })
    expect(response.status).toBe(504)
    expect(await response.json()).toMatchObject({
      error: { code: 'deadline_exceeded', message: expect.stringContaining(`no first token within ${DEADLINE_MS} ms`) },
    })
    expect(Date.now() - startedAt).toBeLessThan(CEILING_MS)
    await waitFor(async () => (await fakeEngineStats(engineUrl)).aborted === 1, { timeoutMs: CEILING_MS, message: 'the engine request aborted' })
    await waitFor(async () => (await getPool(stack, 'hung-model'))?.slots_busy === 0, { timeoutMs: CEILING_MS, message: 'the slot free' })
  })

  it('ends a stream with a deadline_exceeded error when the engine falls silent after its first tokens', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'stalling-model', { slots: 1, fakeArgs: ['--hang-after-tokens', '3'] })
    expect((await stack.admin('PATCH', '/v2/pools/stalling-model', { idle_timeout_ms: DEADLINE_MS })).status).toBe(200)
    const { key } = await createKey(stack)
    const response = await chat(stack, key, { model: 'stalling-model', stream: true })
    expect(response.status).toBe(200)
    const events = (await response.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice('data: '.length))
    const chunks = events.map((data) => JSON.parse(data))
    const text = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('')
    expect(text).toBe(expectedText(3))
    expect(chunks.at(-1)).toMatchObject({ error: { code: 'deadline_exceeded', message: expect.stringContaining(`sent nothing for ${DEADLINE_MS} ms`) } })
    await waitFor(async () => (await fakeEngineStats(engineUrl)).aborted === 1, { timeoutMs: CEILING_MS, message: 'the engine request aborted' })
    await waitFor(async () => (await getPool(stack, 'stalling-model'))?.slots_busy === 0, { timeoutMs: CEILING_MS, message: 'the slot free' })
  })
})
