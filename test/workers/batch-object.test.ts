import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { jsonlBytes, newBatchId, newFileId, writeFile } from '../../control-plane/batch/file-writer.ts'
import { LineStore } from '../../control-plane/batch/line-store.ts'
import { BatchValidator } from '../../control-plane/batch/line-validation.ts'
import { StoredBatch, newBatch } from '../../control-plane/batch/stored-batch.ts'
import type { BatchSpec } from '../../control-plane/batch/batch-calls.ts'
import { BATCH_COMPLETION_WINDOW_MS, BatchOutputLine } from '../../protocol/index.ts'
import type { OpenAIBatch } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, linkedAgent } from './agent-socket.ts'
import type { AgentSocket } from './agent-socket.ts'
import { crashDurableObject, uniqueName } from './support.ts'

const KEY = 'key_batch_object_test'
const POLL_MS = 20
/** The BatchObject's record in its storage, as it keeps it. */
const RECORD_KEY = 'batch'

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + EVENT_CEILING_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

async function fileLines(fileId: string | null): Promise<BatchOutputLine[]> {
  const part = await env.FILES.getByName(fileId ?? '').part({ apiKeyId: KEY, index: 0 })
  if (!part.ok || !part.value) return []
  return new TextDecoder()
    .decode(part.value)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => BatchOutputLine.parse(JSON.parse(line)))
}

/** Three chat lines for `pool`, `req-0` … `req-2`. */
function chatLines(pool: string): string[] {
  return [0, 1, 2].map((i) =>
    JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: pool, messages: [{ role: 'user', content: 'hi' }] } }),
  )
}

/** Uploads `lines` as the key's batch input file; answers what creates a batch of it. */
async function batchOf(pool: string, lines: string[]): Promise<BatchSpec> {
  const fileId = newFileId()
  const meta = { id: fileId, apiKeyId: KEY, filename: 'in.jsonl', purpose: 'batch' as const, createdAt: Date.now() }
  expect(await writeFile(env, meta, jsonlBytes(lines))).toMatchObject({ ok: true })
  return { batchId: newBatchId(), apiKeyId: KEY, keyLimits: {}, endpoint: '/v1/chat/completions', inputFileId: fileId, metadata: null, knownModels: [pool] }
}

async function view(batchId: string): Promise<OpenAIBatch> {
  const viewed = await env.BATCHES.getByName(batchId).view({ apiKeyId: KEY })
  if (!viewed.ok) throw new Error(viewed.error.message)
  return viewed.value.batch
}

/** Runs the next line dispatched to the agent to its end, answering "done". */
async function answerNextLine(agent: AgentSocket): Promise<void> {
  const dispatch = await agent.next()
  if (dispatch.type !== 'dispatch') throw new Error(`expected a dispatch, got ${dispatch.type}`)
  agent.send({ type: 'task_event', task_id: dispatch.task_id, event: { kind: 'started' } })
  const chunk = { choices: [{ index: 0, delta: { content: 'done' }, finish_reason: 'stop' }] }
  agent.send({ type: 'task_event', task_id: dispatch.task_id, event: { kind: 'deltas', seq: 0, chunks: [chunk] } })
  agent.send({ type: 'task_event', task_id: dispatch.task_id, event: { kind: 'end', finish_reason: 'stop', usage: null } })
}

/**
 * Leaves the batch as a control-plane restart would while its lines were checked: the record
 * `validating`, the first line stored, the alarm armed; no check running.
 */
async function interruptedValidation(spec: BatchSpec, { expiresAt }: { expiresAt?: number } = {}) {
  const stub = env.BATCHES.getByName(spec.batchId)
  const [first] = chatLines(spec.knownModels[0] ?? '')
  await runInDurableObject(stub, async (_instance, state) => {
    const batch = newBatch(spec, { now: Date.now(), windowMs: BATCH_COMPLETION_WINDOW_MS })
    state.storage.kv.put(RECORD_KEY, { ...batch, expiresAt: expiresAt ?? batch.expiresAt })
    const valid = new BatchValidator({ endpoint: spec.endpoint, knownModels: spec.knownModels }).check(first ?? '', 1)
    if (!valid) throw new Error('the first line should be valid')
    new LineStore(state.storage.sql).insert(valid)
    await state.storage.setAlarm(Date.now() + 60_000)
  })
  await crashDurableObject(stub)
  return env.BATCHES.getByName(spec.batchId)
}

describe('BatchObject', () => {
  it('answers create validating, then runs the lines once they are checked', async () => {
    const pool = uniqueName('model')
    const spec = await batchOf(pool, chatLines(pool))
    const created = await env.BATCHES.getByName(spec.batchId).create(spec)
    expect(created).toMatchObject({ ok: true, value: { status: 'validating', in_progress_at: null, request_counts: { total: 0 } } })
    await until(async () => (await view(spec.batchId)).status !== 'validating', 'the lines to be checked')
    expect(await view(spec.batchId)).toMatchObject({ status: 'in_progress', in_progress_at: expect.any(Number), request_counts: { total: 3 } })
  })

  it('fails a file with a bad line after answering create, naming the line and the field', async () => {
    const pool = uniqueName('model')
    const [first, second] = chatLines(pool)
    const bad = JSON.stringify({ custom_id: 'bad', method: 'GET', url: '/v1/chat/completions', body: { model: pool, messages: [] } })
    const spec = await batchOf(pool, [first ?? '', bad, second ?? ''])
    expect(await env.BATCHES.getByName(spec.batchId).create(spec)).toMatchObject({ ok: true, value: { status: 'validating' } })
    await until(async () => (await view(spec.batchId)).status !== 'validating', 'the lines to be checked')
    expect(await view(spec.batchId)).toMatchObject({
      status: 'failed',
      failed_at: expect.any(Number),
      in_progress_at: null,
      output_file_id: null,
      error_file_id: null,
      errors: { data: [{ code: 'invalid_method', line: 2, param: 'method' }] },
    })
  })

  it('checks a batch left validating by a restart again from its first line when its alarm fires, and runs each line once', async () => {
    const pool = uniqueName('model')
    const agent = await linkedAgent(pool)
    const spec = await batchOf(pool, chatLines(pool))
    const restarted = await interruptedValidation(spec)
    expect(await view(spec.batchId)).toMatchObject({ status: 'validating', request_counts: { total: 0 } })

    expect(await runDurableObjectAlarm(restarted)).toBe(true)
    await until(async () => (await view(spec.batchId)).status !== 'validating', 'the lines to be checked again')
    expect(await view(spec.batchId)).toMatchObject({ status: 'in_progress', request_counts: { total: 3 } })
    for (let line = 0; line < 3; line += 1) await answerNextLine(agent)
    await until(async () => (await view(spec.batchId)).status === 'completed', 'the batch to complete')
    const done = await view(spec.batchId)
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect((await fileLines(done.output_file_id)).map((line) => line.custom_id)).toEqual(['req-0', 'req-1', 'req-2'])
  })

  it('ends a validating batch cancelled at once when cancelled, with no file, and checks it no more', async () => {
    const pool = uniqueName('model')
    const spec = await batchOf(pool, chatLines(pool))
    const restarted = await interruptedValidation(spec)
    const cancelled = await restarted.cancel({ apiKeyId: KEY })
    expect(cancelled).toMatchObject({
      ok: true,
      value: { batch: { status: 'cancelled', cancelling_at: expect.any(Number), cancelled_at: expect.any(Number), output_file_id: null, error_file_id: null } },
    })
    await runDurableObjectAlarm(restarted)
    expect(await view(spec.batchId)).toMatchObject({ status: 'cancelled', request_counts: { total: 0 }, in_progress_at: null })
  })

  it('expires a batch whose window ends while it is validating, with no file', async () => {
    const pool = uniqueName('model')
    const spec = await batchOf(pool, chatLines(pool))
    const restarted = await interruptedValidation(spec, { expiresAt: Date.now() - 1 })
    expect(await runDurableObjectAlarm(restarted)).toBe(true)
    expect(await view(spec.batchId)).toMatchObject({
      status: 'expired',
      expired_at: expect.any(Number),
      in_progress_at: null,
      output_file_id: null,
      error_file_id: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    })
  })

  it('expires past its window after a restart, with what finished in its output and the rest in its error file', async () => {
    const pool = uniqueName('model')
    const agent = await linkedAgent(pool)
    const spec = await batchOf(pool, chatLines(pool))
    const stub = env.BATCHES.getByName(spec.batchId)
    expect(await stub.create(spec)).toMatchObject({ ok: true, value: { status: 'validating' } })

    await answerNextLine(agent)
    expect(await agent.next()).toMatchObject({ type: 'dispatch' })
    await until(async () => (await view(spec.batchId)).request_counts.completed === 1, 'the first line to complete')

    // The control plane restarts while the second line runs, and the window has passed by then.
    await crashDurableObject(stub)
    const restarted = env.BATCHES.getByName(spec.batchId)
    await runInDurableObject(restarted, (_instance, state) => {
      const stored = StoredBatch.parse(state.storage.kv.get(RECORD_KEY))
      state.storage.kv.put(RECORD_KEY, { ...stored, expiresAt: Date.now() - 1 })
    })
    expect(await runDurableObjectAlarm(restarted)).toBe(true)

    const expired = await view(spec.batchId)
    expect(expired).toMatchObject({ status: 'expired', request_counts: { total: 3, completed: 1, failed: 0 }, expired_at: expect.any(Number) })
    expect((await fileLines(expired.output_file_id)).map((line) => line.custom_id)).toEqual(['req-0'])
    const unrun = await fileLines(expired.error_file_id)
    expect(unrun.map((line) => [line.custom_id, line.error?.code])).toEqual([
      ['req-1', 'batch_expired'],
      ['req-2', 'batch_expired'],
    ])
    expect(await env.BATCHES.getByName(spec.batchId).view({ apiKeyId: 'key_someone_else' })).toMatchObject({ ok: false, error: { code: 'not_found' } })
  })
})
