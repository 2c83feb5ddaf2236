import { describe, expect, it } from 'vitest'
import { useStack } from '../support/local-stack.ts'
import { useProcessCleanup } from '../support/processes.ts'
import { createKey, expectedText, openaiClient, servePool } from '../support/openai-stack.ts'

/** The Worker's registry timeout (REGISTRY_TIMEOUT_MS) plus a margin for a loaded machine. */
const ANSWER_CEILING_MS = 8_000

describe('with the registry down', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack()

  it('keeps serving known keys and pools, and answers registry routes 503 registry_unavailable at once', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'outage-model')
    const { key } = await createKey(stack)
    const openai = openaiClient(stack, key)
    const before = await openai.chat.completions.create({ model: 'outage-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 })
    expect(before.choices[0]?.message.content).toBe(expectedText(3))

    await stack.libsql.close()

    const during = await openai.chat.completions.create({ model: 'outage-model', messages: [{ role: 'user', content: 'still?' }], max_tokens: 4 })
    expect(during.choices[0]?.message.content).toBe(expectedText(4))
    let streamed = ''
    for await (const chunk of await openai.chat.completions.create({
      model: 'outage-model',
      messages: [{ role: 'user', content: 'stream' }],
      max_tokens: 2,
      stream: true,
    })) {
      streamed += chunk.choices[0]?.delta.content ?? ''
    }
    expect(streamed).toBe(expectedText(2))

    const startedAt = Date.now()
    const admin = await stack.admin('GET', '/v2/nodes')
    expect(Date.now() - startedAt).toBeLessThan(ANSWER_CEILING_MS)
    expect(admin.status).toBe(503)
    expect(admin.headers.get('retry-after')).not.toBeNull()
    expect(await admin.json()).toMatchObject({ error: { code: 'registry_unavailable', retriable: true } })
  })
})
