import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { jsonlBytes, newBatchId, newFileId, writeFile } from '../../control-plane/batch/file-writer.ts'
import { StoredBatch } from '../../control-plane/batch/stored-batch.ts'
import { BatchOutputLine } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, linkedAgent } from './agent-socket.ts'
import { crashDurableObject, uniqueName } from './support.ts'

const KEY = 'key_batch_object_test'
const POLL_MS = 20

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

describe('BatchObject', () => {
  it('expires past its window after a restart, with what finished in its output and the rest in its error file', async () => {
    const pool = uniqueName('model')
    const agent = await linkedAgent(pool)
    const lines = [0, 1, 2].map((i) =>
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: pool, messages: [{ role: 'user', content: 'hi' }] },
      }),
    )
    const fileId = newFileId()
    const meta = { id: fileId, apiKeyId: KEY, filename: 'in.jsonl', purpose: 'batch' as const, createdAt: Date.now() }
    expect(await writeFile(env, meta, jsonlBytes(lines))).toMatchObject({ ok: true })
    const batchId = newBatchId()
    const stub = env.BATCHES.getByName(batchId)
    const created = await stub.create({
      batchId,
      apiKeyId: KEY,
      keyLimits: {},
      endpoint: '/v1/chat/completions',
      inputFileId: fileId,
      metadata: null,
      knownModels: [pool],
    })
    expect(created).toMatchObject({ ok: true, value: { status: 'in_progress', request_counts: { total: 3 } } })

    const first = await agent.next()
    if (first.type !== 'dispatch') throw new Error(`expected a dispatch, got ${first.type}`)
    agent.send({ type: 'task_event', task_id: first.task_id, event: { kind: 'started' } })
    const chunk = { choices: [{ index: 0, delta: { content: 'done' }, finish_reason: 'stop' }] }
    agent.send({ type: 'task_event', task_id: first.task_id, event: { kind: 'deltas', seq: 0, chunks: [chunk] } })
    agent.send({ type: 'task_event', task_id: first.task_id, event: { kind: 'end', finish_reason: 'stop', usage: null } })
    expect(await agent.next()).toMatchObject({ type: 'dispatch' })
    await until(async () => {
      const viewed = await stub.view({ apiKeyId: KEY })
      return viewed.ok && viewed.value.batch.request_counts.completed === 1
    }, 'the first line to complete')

    // The control plane restarts while the second line runs, and the window has passed by then.
    await crashDurableObject(stub)
    const restarted = env.BATCHES.getByName(batchId)
    await runInDurableObject(restarted, (_instance, state) => {
      const stored = StoredBatch.parse(state.storage.kv.get('batch'))
      state.storage.kv.put('batch', { ...stored, expiresAt: Date.now() - 1 })
    })
    expect(await runDurableObjectAlarm(restarted)).toBe(true)

    const viewed = await restarted.view({ apiKeyId: KEY })
    if (!viewed.ok) throw new Error(viewed.error.message)
    expect(viewed.value.batch).toMatchObject({ status: 'expired', request_counts: { total: 3, completed: 1, failed: 0 }, expired_at: expect.any(Number) })
    expect((await fileLines(viewed.value.batch.output_file_id)).map((line) => line.custom_id)).toEqual(['req-0'])
    const unrun = await fileLines(viewed.value.batch.error_file_id)
    expect(unrun.map((line) => [line.custom_id, line.error?.code])).toEqual([
      ['req-1', 'batch_expired'],
      ['req-2', 'batch_expired'],
    ])
    expect(await env.BATCHES.getByName(batchId).view({ apiKeyId: 'key_someone_else' })).toMatchObject({ ok: false, error: { code: 'not_found' } })
  })
})
