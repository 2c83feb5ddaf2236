import { describe, expect, it } from 'vitest'
import { OpenAIErrorBody } from '../../protocol/index.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { createKey, servePool } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup } from '../support/processes.ts'

const MODEL = 'affinity-model'

async function chat(stack: Stack, key: string, { user, session }: { user?: string; session?: string }) {
  const response = await fetch(new URL('/v1/chat/completions', stack.url), {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', ...(session !== undefined ? { 'X-Session-Id': session } : {}) },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, user }),
  })
  return { status: response.status, body: await response.text() }
}

describe('session affinity', () => {
  const cleanup = useProcessCleanup()
  const stack = useStack()

  it('places every request of a session on the replica that served it last', async () => {
    const engines = await Promise.all(
      ['node-a', 'node-b'].map(async (name) => (await servePool(cleanup, stack(), MODEL, { slots: 2, name, fakeArgs: ['--tokens', '2'] })).engineUrl),
    )
    const { key } = await createKey(stack())
    /** Which engine saw each `user`, as the engines themselves count them. */
    const engineOf = async () => {
      const seen = new Map<string, number[]>()
      for (const [i, url] of engines.entries())
        for (const user of Object.keys((await fakeEngineStats(url)).users)) seen.set(user, [...(seen.get(user) ?? []), i])
      return seen
    }

    // Sessions by `user`: each engine counts the session's requests under its name.
    for (let turn = 0; turn < 4; turn++) for (let s = 0; s < 4; s++) expect((await chat(stack(), key, { user: `user-${s}` })).status).toBe(200)
    // Sessions by header: each request has a user of its own, so only the header can keep a session together.
    for (let turn = 0; turn < 4; turn++)
      for (let s = 0; s < 4; s++) expect((await chat(stack(), key, { user: `session-${s}/turn-${turn}`, session: `session-${s}` })).status).toBe(200)

    const seen = await engineOf()
    for (let s = 0; s < 4; s++) {
      expect(seen.get(`user-${s}`)).toHaveLength(1)
      const turns = new Set(Array.from({ length: 4 }, (_, turn) => seen.get(`session-${s}/turn-${turn}`)?.join()))
      expect(turns.size).toBe(1)
    }
    // Without a session, requests take turns on equal replicas, so a session kept together is affinity's doing.
    const before = await Promise.all(engines.map(async (url) => (await fakeEngineStats(url)).requests))
    for (let i = 0; i < 4; i++) expect((await chat(stack(), key, {})).status).toBe(200)
    const after = await Promise.all(engines.map(async (url) => (await fakeEngineStats(url)).requests))
    expect(after.map((n, i) => n - (before[i] ?? 0))).toEqual([2, 2])
  })

  it('refuses an X-Session-Id that is not printable ASCII or too long, naming the header', async () => {
    await servePool(cleanup, stack(), MODEL, { slots: 1, fakeArgs: ['--tokens', '2'] })
    const { key } = await createKey(stack())
    for (const session of ['x'.repeat(257), 'tab\there']) {
      const refused = await chat(stack(), key, { user: 'u', session })
      expect(refused.status).toBe(400)
      expect(OpenAIErrorBody.parse(JSON.parse(refused.body)).error.message).toContain('X-Session-Id')
    }
  })
})
