import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { toFile } from 'openai'
import { AdminBatch } from '../../protocol/index.ts'
import { chatLines, fileLines, isOver, isValidated, uploadLines, waitForBatch } from '../support/batch-files.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { createKey, openaiClient, servePool } from '../support/openai-stack.ts'
import { REPO_ROOT, fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'

/** `llorch` with the stack's URL and admin token; its stdout, after checking it exited 0. */
async function llorch(stack: Stack, args: string[]): Promise<string> {
  const cli = path.join(REPO_ROOT, 'cli/llorch.ts')
  const result = await execa(process.execPath, [cli, '--url', stack.url.toString(), '--admin-token', TEST_ADMIN_TOKEN, ...args], {
    reject: false,
    timeout: 30_000,
  })
  expect(result.exitCode, String(result.stderr)).toBe(0)
  return String(result.stdout)
}

/** Fast enough that a hundred short lines finish in a few seconds on four slots. */
const FAST = ['--tokens-per-second', '500']

describe('batch API with the official client', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack()

  it('completes a 100-line batch with one output line per custom id', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'batch-model', { slots: 4, fakeArgs: FAST })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const file = await uploadLines(client, chatLines('batch-model', 100))
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', status: 'processed', filename: 'input.jsonl' })

    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { run: 'e2e' },
    })
    expect(created).toMatchObject({ object: 'batch', status: 'validating', input_file_id: file.id, metadata: { run: 'e2e' }, in_progress_at: null })
    // Listed from the create on, while its lines are still being checked.
    expect((await client.batches.list()).data.map((batch) => batch.id)).toEqual([created.id])
    const done = await waitForBatch(client, created.id, isOver)
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 100, completed: 100, failed: 0 }, error_file_id: null })
    expect(done.usage?.output_tokens).toBe(200)

    const output = await fileLines(client, done.output_file_id)
    expect(output.map((line) => line.custom_id).sort()).toEqual(
      chatLines('batch-model', 100)
        .map((_, i) => `req-${i}`)
        .sort(),
    )
    expect(output[0]).toMatchObject({ error: null, response: { status_code: 200, body: { object: 'chat.completion', model: 'batch-model' } } })

    const listed = await client.batches.list({ limit: 1 })
    expect(listed.data.map((batch) => batch.id)).toEqual([created.id])
    expect((await client.files.retrieve(done.output_file_id ?? '')).purpose).toBe('batch_output')
    const metrics = await (await stack.admin('GET', '/metrics')).text()
    expect(metrics).toContain('llorch_batch_lines_total{outcome="completed"} 100')
    expect(metrics).toContain('llorch_batch_lines_total{outcome="failed"} 0')
  })

  it('keeps files to their limits and expires_after, and deletes them', async () => {
    const stack = currentStack()
    const client = openaiClient(stack, (await createKey(stack)).key)
    const file = await client.files.create({
      file: await toFile(Buffer.from('{"custom_id":"a"}\n'), 'small.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: 3600 },
    })
    expect(file).toMatchObject({ bytes: 18, filename: 'small.jsonl', expires_at: file.created_at + 3600 })
    const tooLong = client.files.create({ file: await toFile(Buffer.from('{}\n'.repeat(50_001)), 'long.jsonl'), purpose: 'batch' })
    await expect(tooLong).rejects.toMatchObject({ status: 400, error: { param: 'file' } })
    expect((await client.files.list()).data.map((f) => f.id)).toEqual([file.id])
    expect(await (await client.files.content(file.id)).text()).toBe('{"custom_id":"a"}\n')
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true })
    await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 })
  })

  it("holds at most the pool's batch_slot_share of its slots", async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'batch-model', { slots: 4, fakeArgs: ['--tokens-per-second', '100'] })
    expect((await stack.admin('PATCH', '/v2/pools/batch-model', { batch_slot_share: 0.5 })).status).toBe(200)
    const client = openaiClient(stack, (await createKey(stack)).key)
    const file = await uploadLines(client, chatLines('batch-model', 12, 10))
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    expect(await waitForBatch(client, batch.id, isOver)).toMatchObject({ status: 'completed', request_counts: { completed: 12 } })
    expect((await fakeEngineStats(engineUrl)).max_active).toBe(2)
  })

  it('fails a batch with a bad line, naming the line and the field, and runs none of it', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: FAST })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const [first, second] = chatLines('batch-model', 2)
    const file = await uploadLines(client, [
      first ?? {},
      second ?? {},
      { custom_id: 'bad', method: 'POST', url: '/v1/chat/completions', body: { model: 'batch-model' } },
    ])
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    expect(created).toMatchObject({ status: 'validating', errors: null })
    const batch = await waitForBatch(client, created.id, isValidated)
    expect(batch).toMatchObject({ status: 'failed', failed_at: expect.any(Number), in_progress_at: null, output_file_id: null, error_file_id: null })
    expect(batch.errors?.data).toEqual([expect.objectContaining({ line: 3, param: 'body.messages', code: 'invalid_request' })])
    expect((await fakeEngineStats(engineUrl)).requests).toBe(0)
  })

  it('cancels a running batch promptly and keeps what finished', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: ['--tokens-per-second', '50'] })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const file = await uploadLines(client, chatLines('batch-model', 40, 5))
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    expect(batch.status).toBe('validating')
    expect(await waitForBatch(client, batch.id, isValidated)).toMatchObject({ status: 'in_progress', in_progress_at: expect.any(Number) })
    await waitForBatch(client, batch.id, (b) => (b.request_counts?.completed ?? 0) >= 2)

    const cancelled = await client.batches.cancel(batch.id)
    expect(cancelled.status).toBe('cancelled')
    const completed = cancelled.request_counts?.completed ?? 0
    expect(completed).toBeGreaterThanOrEqual(2)
    expect(completed).toBeLessThan(40)
    const output = await fileLines(client, cancelled.output_file_id)
    const unrun = await fileLines(client, cancelled.error_file_id)
    expect(output).toHaveLength(completed)
    expect(unrun.every((line) => line.error?.code === 'batch_cancelled')).toBe(true)
    expect(new Set([...output, ...unrun].map((line) => line.custom_id)).size).toBe(40)
  })

  it("gives a batch line's slot to an interactive request that finds none free, and the batch still ends with every line once", async () => {
    const stack = currentStack()
    // Each line holds its slot for three seconds; an interactive reply of two tokens takes a fifth of one.
    const { engineUrl } = await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: ['--tokens', '30', '--tokens-per-second', '10'] })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const file = await uploadLines(client, chatLines('batch-model', 2, 30))
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    await waitFor(async () => ((await fakeEngineStats(engineUrl)).active === 2 ? true : undefined), { timeoutMs: 10_000, message: 'both slots busy' })

    const reply = await client.chat.completions.create({ model: 'batch-model', max_tokens: 2, messages: [{ role: 'user', content: 'now' }] })
    expect(reply.choices[0]?.finish_reason).toBe('length')
    expect((await client.batches.retrieve(batch.id)).request_counts?.completed).toBe(0)
    const metrics = await (await stack.admin('GET', '/metrics')).text()
    expect(metrics).toContain('llorch_pool_tasks_preempted_total{pool="batch-model"} 1')

    const done = await waitForBatch(client, batch.id, isOver)
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } })
    const output = await fileLines(client, done.output_file_id)
    expect(output.map((line) => line.custom_id).sort()).toEqual(['req-0', 'req-1'])
  })

  it("shows every key's batches to the operator: GET /v2/batches and llorch batches list, show, cancel", async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: FAST })
    const { id: keyId, key } = await createKey(stack)
    const client = openaiClient(stack, key)
    const file = await uploadLines(client, chatLines('batch-model', 3))
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    await waitForBatch(client, batch.id, isOver)

    const listed = await llorch(stack, ['batches', 'list'])
    expect(listed.split('\n')[0]).toMatch(/^ID\s+KEY\s+STATUS\s+MODEL\s+DONE\s+FAILED\s+CREATED\s+PREDICTED END$/)
    expect(listed.split('\n')[1]).toMatch(new RegExp(`^${batch.id}\\s+${keyId}\\s+completed\\s+batch-model\\s+3/3\\s+0`))
    const shown = AdminBatch.parse(JSON.parse(await llorch(stack, ['--json', 'batches', 'show', batch.id])))
    expect(shown).toMatchObject({ id: batch.id, api_key_id: keyId, status: 'completed' })
    expect(await llorch(stack, ['batches', 'cancel', batch.id])).toBe(`batch ${batch.id} completed: 3 of 3 lines done`)
  })

  it('answers 404 to another key on every route of files and batches', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: FAST })
    const owner = openaiClient(stack, (await createKey(stack)).key)
    const other = openaiClient(stack, (await createKey(stack)).key)
    const file = await uploadLines(owner, chatLines('batch-model', 2))
    const batch = await owner.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    const done = await waitForBatch(owner, batch.id, isOver)
    const outputId = done.output_file_id ?? ''

    const status = (call: Promise<unknown>) =>
      call.then(
        () => 200,
        (error: { status?: number }) => error.status,
      )
    for (const id of [file.id, outputId]) {
      expect(await status(other.files.retrieve(id))).toBe(404)
      expect(await status(other.files.content(id))).toBe(404)
      expect(await status(other.files.delete(id))).toBe(404)
    }
    expect(await status(other.batches.retrieve(batch.id))).toBe(404)
    expect(await status(other.batches.cancel(batch.id))).toBe(404)
    expect(await status(other.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }))).toBe(404)
    expect((await other.batches.list()).data).toEqual([])
    expect((await other.files.list()).data).toEqual([])
    expect((await owner.files.list()).data.map((f) => f.id).sort()).toEqual([file.id, outputId].sort())
  })
})

/** The Worker's BATCH_COMPLETION_WINDOW_MS for the expiry test: a few seconds, not OpenAI's 24 h. */
const SHORT_WINDOW_MS = 3_000
const SLOW_LINES = 20
/** Each line streams its 20 tokens over about a second on two slots, so the 20 lines need ten: far past the window. */
const SLOW = ['--tokens-per-second', '20']
const SLOW_LINE_TOKENS = 20

describe('batch expiry with the official client', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack({ batchCompletionWindowMs: SHORT_WINDOW_MS })

  it('expires a batch past its window and keeps what finished: output for each finished line, batch_expired for every other', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'batch-model', { slots: 2, fakeArgs: SLOW })
    const client = openaiClient(stack, (await createKey(stack)).key)
    const lines = chatLines('batch-model', SLOW_LINES, SLOW_LINE_TOKENS)
    const file = await uploadLines(client, lines)
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    // The window OpenAI names stays "24h"; expires_at says when this deployment expires the batch.
    expect(created).toMatchObject({ completion_window: '24h', expires_at: created.created_at + SHORT_WINDOW_MS / 1000 })

    const expired = await waitForBatch(client, created.id, isOver)
    expect(expired).toMatchObject({ status: 'expired', expired_at: expect.any(Number), request_counts: { total: SLOW_LINES, failed: 0 } })
    const completed = expired.request_counts?.completed ?? 0
    expect(completed).toBeGreaterThan(0)
    expect(completed).toBeLessThan(SLOW_LINES)

    const output = await fileLines(client, expired.output_file_id)
    expect(output).toHaveLength(completed)
    expect(new Set(output.map((line) => line.custom_id)).size).toBe(completed)
    expect(output.every((line) => line.error === null && line.response?.status_code === 200)).toBe(true)
    const unrun = await fileLines(client, expired.error_file_id)
    expect(unrun).toHaveLength(SLOW_LINES - completed)
    expect(unrun.every((line) => line.response === null && line.error?.code === 'batch_expired')).toBe(true)
    expect([...output, ...unrun].map((line) => line.custom_id).sort()).toEqual(lines.map((_, i) => `req-${i}`).sort())
  })
})
