import { describe, expect, it } from 'vitest'
import type OpenAI from 'openai'
import { chatLines, fileLines, isOver, uploadLines, waitForBatch } from '../support/batch-files.ts'
import { useStack } from '../support/local-stack.ts'
import { createKey, openaiClient, servePool } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'

const LINES = 30
/** Each line streams its tokens over about a quarter of a second, so lines are mid-run when the fault hits. */
const PACED = ['--tokens-per-second', '20']
const TOKENS = 5

/** The batch ended completed, with each custom id in its output exactly once and no error file. */
async function expectEveryLineOnce(client: OpenAI, id: string): Promise<void> {
  const done = await waitForBatch(client, id, isOver, 60_000)
  expect(done).toMatchObject({ status: 'completed', request_counts: { total: LINES, completed: LINES, failed: 0 }, error_file_id: null })
  const ids = (await fileLines(client, done.output_file_id)).map((line) => line.custom_id)
  expect(ids).toHaveLength(LINES)
  expect(new Set(ids).size).toBe(LINES)
}

async function startBatch(client: OpenAI): Promise<OpenAI.Batch> {
  const file = await uploadLines(client, chatLines('durable-model', LINES, TOKENS))
  return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
}

describe('batch durability', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack()

  it('loses and duplicates no line when an agent is killed mid-batch', async () => {
    const stack = currentStack()
    const a = await servePool(cleanup, stack, 'durable-model', { name: 'node-a', slots: 2, fakeArgs: PACED })
    await servePool(cleanup, stack, 'durable-model', { name: 'node-b', slots: 2, fakeArgs: PACED })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const batch = await startBatch(client)
    await waitForBatch(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= 2)
    await waitFor(async () => (await fakeEngineStats(a.engineUrl)).active > 0 || null, { intervalMs: 5, message: 'a line running on node-a' })
    process.kill(-a.agent.pid, 'SIGKILL')
    await expectEveryLineOnce(client, batch.id)
  })

  it('loses and duplicates no line when its engine keeps crashing mid-reply', async () => {
    const stack = currentStack()
    const restartFast = { restart: { initial_delay_ms: 100, max_delay_ms: 500 } }
    await servePool(cleanup, stack, 'durable-model', { slots: 2, fakeArgs: [...PACED, '--crash-after-tokens', '60'], overrides: restartFast })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const batch = await startBatch(client)
    await expectEveryLineOnce(client, batch.id)
  })

  it('loses and duplicates no line when the control plane restarts mid-batch', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'durable-model', { slots: 2, fakeArgs: PACED })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const batch = await startBatch(client)
    await waitForBatch(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= 2)
    await stack.restartControlPlane()
    await expectEveryLineOnce(client, batch.id)
  })
})
