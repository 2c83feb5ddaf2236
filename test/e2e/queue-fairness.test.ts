import { describe, expect, it } from 'vitest'
import { getPool } from '../support/linked-agent.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, servePool } from '../support/openai-stack.ts'
import { useProcessCleanup, waitFor } from '../support/processes.ts'

const MODEL = 'fair-model'

interface Served {
  /** When the response began: the task had its slot and its first token. */
  startedAt: number
  doneAt: number
  status: number
}

/** A streamed chat completion; the response starts once the task runs, and ends with its last token. */
async function stream(stack: Stack, key: string, extra: Record<string, unknown> = {}): Promise<Served> {
  const response = await fetch(new URL('/v1/chat/completions', stack.url), {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream: true, ...extra }),
  })
  const startedAt = performance.now()
  await response.text()
  return { startedAt, doneAt: performance.now(), status: response.status }
}

const queueDepth = async (stack: Stack) => (await getPool(stack, MODEL))?.queue_depth ?? 0

describe('fair service order across keys and classes', () => {
  const cleanup = useProcessCleanup()
  const stack = useStack()

  it("starts a key's single task within one slot's turn though another key has fifty queued", async () => {
    // One slot, two tokens at 10 tokens/s: about 200 ms a task.
    await servePool(cleanup, stack(), MODEL, { slots: 1, fakeArgs: ['--tokens', '2', '--tokens-per-second', '10'] })
    const busy = await createKey(stack())
    const quiet = await createKey(stack())
    const flood = Array.from({ length: 50 }, () => stream(stack(), busy.key))
    await waitFor(async () => (await queueDepth(stack())) >= 45, { timeoutMs: CEILING_MS, message: 'the tasks of one key queued' })
    const sentAt = performance.now()
    const single = await stream(stack(), quiet.key)
    const others = await Promise.all(flood)
    expect([single, ...others].every((s) => s.status === 200)).toBe(true)
    // At most the task that held the slot when it arrived went before it; first come first served would have run the 45 queued.
    expect(others.filter((s) => s.startedAt > sentAt && s.startedAt < single.startedAt).length).toBeLessThanOrEqual(1)
    expect(others.filter((s) => s.startedAt > single.startedAt).length).toBeGreaterThanOrEqual(44)
  })

  it('serves a batch task despite a steady interactive stream once it waited its aging time, and not before', async () => {
    await servePool(cleanup, stack(), MODEL, { slots: 1, fakeArgs: ['--tokens', '2', '--tokens-per-second', '20'] })
    expect((await stack().admin('PATCH', `/v2/pools/${MODEL}`, { batch_aging_ms: 3_600_000 })).status).toBe(200)
    const interactive = await createKey(stack())
    const batchKey = await createKey(stack())
    // Three clients sending interactive requests back to back keep the single slot's queue full.
    let streaming = true
    const served: Served[] = []
    const lanes = Array.from({ length: 3 }, async () => {
      while (streaming) served.push(await stream(stack(), interactive.key))
    })
    await waitFor(async () => (await queueDepth(stack())) >= 1, { timeoutMs: CEILING_MS, message: 'interactive tasks queued' })
    const sentAt = performance.now()
    let batchDone: Served | null = null
    const batch = stream(stack(), batchKey.key, { priority: 'batch' }).then((s) => (batchDone = s))
    await waitFor(() => served.filter((s) => s.startedAt > sentAt).length >= 15, {
      timeoutMs: CEILING_MS,
      message: 'interactive tasks served after the batch task arrived',
    })
    // Younger than its aging time, the batch task waits behind every interactive one.
    expect(batchDone).toBeNull()

    expect((await stack().admin('PATCH', `/v2/pools/${MODEL}`, { batch_aging_ms: 500 })).status).toBe(200)
    const done = await batch
    const servedAfter = served.filter((s) => s.startedAt > done.doneAt).length
    streaming = false
    await Promise.all(lanes)
    expect(done.status).toBe(200)
    // The interactive stream went on around it.
    expect(served.length - servedAfter).toBeGreaterThanOrEqual(15)
    expect(served.every((s) => s.status === 200)).toBe(true)
  })
})
