import { describe, expect, it } from 'vitest'
import { CancelTaskResponse, CreateApiKeyResponse, CreateTaskResponse, TaskView } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, expectedText, freePort, servePool } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'
import { createTask, openEvents, taskCall, tokenText } from '../support/task-events.ts'
import type { EventReader, ReceivedEvent } from '../support/task-events.ts'

/** The fake engine's pace in these tests: slow enough that a task holds its slot for a while. */
const TOKENS_PER_SECOND = 40
/** Engine flags: that pace, and as many tokens as a request's `max_tokens` asks for. */
const PACED = ['--tokens-per-second', String(TOKENS_PER_SECOND), '--tokens', '1000']

async function created(response: Response): Promise<CreateTaskResponse> {
  expect(response.status).toBe(202)
  return CreateTaskResponse.parse(await response.json())
}

async function view(stack: Stack, key: string, taskId: string): Promise<TaskView> {
  const response = await taskCall(stack, key, 'GET', `/v2/tasks/${taskId}`)
  expect(response.status).toBe(200)
  return TaskView.parse(await response.json())
}

/** Reads events until one matches, returning everything read. */
async function readUntil(reader: EventReader, done: (event: ReceivedEvent) => boolean): Promise<ReceivedEvent[]> {
  const events: ReceivedEvent[] = []
  for (let event = await reader.next(); event; event = await reader.next()) {
    events.push(event)
    if (done(event)) return events
  }
  throw new Error(`the stream ended before the awaited event; got ${events.map((e) => e.event.event).join(', ')}`)
}

/** A `/v1` stream holding the pool's only slot until it is read to the end. */
async function occupySlot(stack: Stack, key: string, model: string, tokens: number): Promise<Response> {
  const response = await taskCall(stack, key, 'POST', '/v1/chat/completions', {
    body: { model, stream: true, max_tokens: tokens, messages: [{ role: 'user', content: 'hold' }] },
  })
  expect(response.status).toBe(200)
  return response
}

describe('native task API', () => {
  const cleanup = useProcessCleanup()
  const currentStack = useStack()

  it('runs a task once its events are read: queued, started, tokens, metrics, end, with increasing ids', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'task-model', { slots: 1 })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'task-model', max_tokens: 6 }))
    expect(task).toMatchObject({ queue_position: 0, events_url: `/v2/tasks/${task.task_id}/events` })
    expect(await view(stack, key, task.task_id)).toMatchObject({ state: 'queued', queue_position: 0, attached: false })

    const reader = await openEvents(stack, key, task.task_id)
    expect(reader.response.status).toBe(200)
    expect(reader.response.headers.get('content-type')).toContain('text/event-stream')
    const events = await reader.rest()
    expect(events.map((e) => e.event.event)).toEqual([
      'queued',
      'started',
      ...events.filter((e) => e.event.event === 'token').map(() => 'token'),
      'metrics',
      'end',
    ])
    expect(tokenText(events)).toBe(expectedText(6))
    const ids = events.map((e) => e.id)
    expect(ids).toEqual(ids.map((_, i) => i + 1))
    expect(events.at(-1)?.event).toMatchObject({ event: 'end', data: { finish_reason: 'length', usage: { completion_tokens: 6 } } })
    expect(events.at(-2)?.event).toMatchObject({
      event: 'metrics',
      data: { completion_tokens: 6, ttft_ms: expect.any(Number), queue_wait_ms: expect.any(Number) },
    })

    expect(await view(stack, key, task.task_id)).toMatchObject({
      state: 'completed',
      queue_position: null,
      usage: { completion_tokens: 6 },
      last_event_id: events.length,
    })
    // Everything was read: EventSource is told not to reconnect.
    expect((await openEvents(stack, key, task.task_id, events.length)).response.status).toBe(204)
  })

  it('counts queue positions down for tasks behind a busy slot, with a predicted start from measured task times', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'busy-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    const holder = await occupySlot(stack, key, 'busy-model', 40)
    await waitFor(async () => (await getPool(stack, 'busy-model'))?.slots_busy === 1, { timeoutMs: CEILING_MS, message: 'the slot busy' })
    // Two seconds of tokens: the second task spends them at the head of the queue.
    const first = await created(await createTask(stack, key, { model: 'busy-model', max_tokens: 80 }))
    const second = await created(await createTask(stack, key, { model: 'busy-model', max_tokens: 20 }))
    expect([first.queue_position, second.queue_position]).toEqual([0, 1])
    expect(second.predicted_start_ms).toBeGreaterThan(first.predicted_start_ms)

    const firstReader = await openEvents(stack, key, first.task_id)
    const secondReader = await openEvents(stack, key, second.task_id)
    await holder.text()
    const [firstEvents, secondEvents] = await Promise.all([firstReader.rest(), secondReader.rest()])
    expect(firstEvents.at(-1)?.event.event).toBe('end')
    expect(secondEvents.at(-1)?.event.event).toBe('end')
    const positions = secondEvents.flatMap(({ event }) => (event.event === 'queued' ? [event.data.position] : []))
    expect(positions[0]).toBe(1)
    expect(positions).toContain(0)
    expect(positions).toEqual([...positions].sort((a, b) => b - a))
    // It started only after the queue moved it to the head.
    const startedAt = secondEvents.findIndex((e) => e.event.event === 'started')
    expect(secondEvents.findIndex((e) => e.event.event === 'queued' && e.event.data.position === 0)).toBeLessThan(startedAt)
    expect(tokenText(secondEvents)).toBe(expectedText(20))
  })

  it('resumes a dropped reader with Last-Event-ID: every token exactly once, no gap, no duplicate', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'resume-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'resume-model', max_tokens: 30 }))
    const reader = await openEvents(stack, key, task.task_id)
    let tokens = 0
    const before = await readUntil(reader, (e) => e.event.event === 'token' && ++tokens === 5)
    reader.abort()
    const lastSeen = before.at(-1)?.id ?? 0

    const resumed = await openEvents(stack, key, task.task_id, lastSeen)
    expect(resumed.response.status).toBe(200)
    const after = await resumed.rest()
    expect(after[0]?.id).toBe(lastSeen + 1)
    const all = [...before, ...after]
    const ids = all.map((e) => e.id)
    expect(ids).toEqual(ids.map((_, i) => i + 1))
    expect(tokenText(all)).toBe(expectedText(30))
    expect(all.at(-1)?.event.event).toBe('end')
  })

  it('hands the events to a new reader of the same key and tells the old one', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'takeover-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'takeover-model', max_tokens: 30 }))
    const first = await openEvents(stack, key, task.task_id)
    const seen = await readUntil(first, (e) => e.event.event === 'token')
    const second = await openEvents(stack, key, task.task_id, seen.at(-1)?.id ?? 0)
    const told = await first.rest()
    expect(told.at(-1)).toEqual({ id: null, event: { event: 'error', data: { code: 'reader_replaced', message: expect.any(String), retriable: false } } })
    const rest = await second.rest()
    expect(rest[0]?.id).toBe((seen.at(-1)?.id ?? 0) + 1)
    expect(tokenText([...seen, ...rest])).toBe(expectedText(30))
  })

  it('cancels a queued task: it leaves the queue and never reaches the engine', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'cancel-queued-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    // Far more tokens than the test needs, so the slot stays busy however slow the machine is; cancelled below.
    const holder = await occupySlot(stack, key, 'cancel-queued-model', 1000)
    await waitFor(async () => (await getPool(stack, 'cancel-queued-model'))?.slots_busy === 1, { timeoutMs: CEILING_MS, message: 'the slot busy' })
    const task = await created(await createTask(stack, key, { model: 'cancel-queued-model' }))
    const reader = await openEvents(stack, key, task.task_id)
    await readUntil(reader, (e) => e.event.event === 'queued')
    expect((await getPool(stack, 'cancel-queued-model'))?.queue_depth).toBe(1)

    const cancel = await taskCall(stack, key, 'POST', `/v2/tasks/${task.task_id}/cancel`)
    expect(cancel.status).toBe(200)
    expect(CancelTaskResponse.parse(await cancel.json())).toEqual({ task_id: task.task_id, state: 'cancelled' })
    expect((await getPool(stack, 'cancel-queued-model'))?.queue_depth).toBe(0)
    expect(await reader.rest()).toEqual([
      { id: expect.any(Number), event: { event: 'error', data: { code: 'cancelled', message: expect.any(String), retriable: false } } },
    ])
    await holder.body?.cancel()
    await waitFor(async () => (await getPool(stack, 'cancel-queued-model'))?.slots_busy === 0, { timeoutMs: CEILING_MS, message: 'the slot free again' })
    expect((await fakeEngineStats(engineUrl)).requests).toBe(1)
    expect(await view(stack, key, task.task_id)).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } })
  })

  it('cancels a running task: the engine sees the abort, no token follows the ack, the slot is free at once', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'cancel-running-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'cancel-running-model', max_tokens: 200 }))
    const reader = await openEvents(stack, key, task.task_id)
    const before = await readUntil(reader, (e) => e.event.event === 'token')

    const cancel = await taskCall(stack, key, 'POST', `/v2/tasks/${task.task_id}/cancel`)
    expect(CancelTaskResponse.parse(await cancel.json())).toMatchObject({ state: 'cancelled' })
    expect((await getPool(stack, 'cancel-running-model'))?.slots_busy).toBe(0)
    const after = await reader.rest()
    const all = [...before, ...after]
    expect(all.at(-1)?.event).toMatchObject({ event: 'error', data: { code: 'cancelled' } })
    expect(tokenText(all).length).toBeLessThan(expectedText(200).length)
    await waitFor(async () => (await fakeEngineStats(engineUrl)).aborted === 1, { timeoutMs: CEILING_MS, message: 'the engine request aborted' })
    // Resuming after the cancel replays nothing past it.
    expect((await openEvents(stack, key, task.task_id, all.at(-1)?.id ?? 0)).response.status).toBe(204)
  })

  it('says `loading` while an on-demand engine starts for the task, then runs it', async () => {
    const stack = currentStack()
    const port = await freePort()
    await startLinkedAgent(cleanup, stack, {
      name: 'node-lazy',
      pools: [fakePoolInput('lazy-model', ['--load-ms', '1500'], { slots: 1, port, preload: 'on-demand' })],
    })
    await waitFor(async () => (await getPool(stack, 'lazy-model'))?.replicas.some((r) => r.state === 'stopped'), {
      timeoutMs: CEILING_MS,
      message: 'a stopped replica',
    })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'lazy-model', max_tokens: 3 }))
    const events = await (await openEvents(stack, key, task.task_id)).rest()
    const kinds = events.map((e) => e.event.event)
    expect(events.find((e) => e.event.event === 'loading')?.event).toMatchObject({
      event: 'loading',
      data: { reason: 'on_demand_start', message: expect.stringContaining('starting an engine') },
    })
    expect(kinds.indexOf('loading')).toBeLessThan(kinds.indexOf('started'))
    expect(tokenText(events)).toBe(expectedText(3))
  })

  it('expires a task nobody reads in time and gives its place back', async () => {
    const stack = currentStack()
    const { engineUrl } = await servePool(cleanup, stack, 'expire-model', { slots: 1 })
    const { key } = await createKey(stack)
    const task = await created(await createTask(stack, key, { model: 'expire-model', attach_within_ms: 300 }))
    await waitFor(async () => (await view(stack, key, task.task_id)).state === 'expired', { timeoutMs: CEILING_MS, message: 'the task expired' })
    expect(await view(stack, key, task.task_id)).toMatchObject({ error: { code: 'task_expired' } })
    await waitFor(async () => (await getPool(stack, 'expire-model'))?.queue_depth === 0, { timeoutMs: CEILING_MS, message: 'its place given back' })
    const late = await taskCall(stack, key, 'GET', `/v2/tasks/${task.task_id}/events`)
    expect(late.status).toBe(410)
    expect(await late.json()).toMatchObject({ error: { code: 'task_expired' } })
    expect((await fakeEngineStats(engineUrl)).requests).toBe(0)
  })

  it('keeps a task from every other key: 404 for its state, its events and its cancel', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'private-model', { slots: 1 })
    const owner = await createKey(stack)
    const other = await createKey(stack)
    const task = await created(await createTask(stack, owner.key, { model: 'private-model' }))
    for (const [method, path] of [
      ['GET', `/v2/tasks/${task.task_id}`],
      ['GET', `/v2/tasks/${task.task_id}/events`],
      ['POST', `/v2/tasks/${task.task_id}/cancel`],
    ] as const) {
      const response = await taskCall(stack, other.key, method, path)
      expect(response.status, `${method} ${path}`).toBe(404)
      expect(await response.json()).toMatchObject({ error: { code: 'not_found' } })
    }
    expect(await view(stack, owner.key, task.task_id)).toMatchObject({ state: 'queued' })
  })

  it("counts a task against its key's concurrency from its creation until it ends, is cancelled or expires", async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'limited-model', { slots: 1 })
    const issued = await stack.admin('POST', '/v2/api-keys', { name: 'one-at-a-time', scopes: ['inference'], limits: { max_concurrent: 1 } })
    const { key } = CreateApiKeyResponse.parse(await issued.json())
    const first = await created(await createTask(stack, key, { model: 'limited-model', max_tokens: 2 }))
    const refused = await createTask(stack, key, { model: 'limited-model' })
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).not.toBeNull()
    expect(await refused.json()).toMatchObject({ error: { code: 'rate_limit_concurrency' } })

    // Cancelled before anyone read it: its place is given back.
    expect((await taskCall(stack, key, 'POST', `/v2/tasks/${first.task_id}/cancel`)).status).toBe(200)
    const second = await created(await createTask(stack, key, { model: 'limited-model', max_tokens: 2 }))
    // Run to its end: the place is free again.
    expect((await (await openEvents(stack, key, second.task_id)).rest()).at(-1)?.event.event).toBe('end')
    // The end settles the key's count a moment after the reader saw it.
    const third = await created(
      await waitFor(
        async () => {
          const response = await createTask(stack, key, { model: 'limited-model', attach_within_ms: 300 })
          return response.status === 429 ? null : response
        },
        { timeoutMs: CEILING_MS, message: 'a place after the end' },
      ),
    )
    // Expired unread: free again.
    await waitFor(async () => (await view(stack, key, third.task_id)).state === 'expired', { timeoutMs: CEILING_MS, message: 'the task expired' })
    await waitFor(async () => (await createTask(stack, key, { model: 'limited-model' })).status === 202, {
      timeoutMs: CEILING_MS,
      message: 'a place for a new task',
    })
  })

  it('answers bad bodies and unknown models as /v1 does', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'valid-model', { slots: 1 })
    const { key } = await createKey(stack)
    const noShape = await taskCall(stack, key, 'POST', '/v2/tasks', { body: { model: 'valid-model' } })
    expect(noShape.status).toBe(400)
    expect(await noShape.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringContaining('`endpoint`') } })
    const badField = await createTask(stack, key, { model: 'valid-model', temperature: 9 })
    expect(badField.status).toBe(400)
    expect(await badField.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringContaining('temperature') } })
    const unknown = await createTask(stack, key, { model: 'no-such-model' })
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ error: { code: 'model_not_found' } })
    const badResume = await taskCall(stack, key, 'GET', `/v2/tasks/${crypto.randomUUID()}/events`, { headers: { 'Last-Event-ID': 'abc' } })
    expect(badResume.status).toBe(400)
  })

  it('shows a queued /v1 stream alive: headers and `: queued position=` comment lines before the first token', async () => {
    const stack = currentStack()
    await servePool(cleanup, stack, 'v1-queue-model', { slots: 1, fakeArgs: PACED })
    const { key } = await createKey(stack)
    const holder = await occupySlot(stack, key, 'v1-queue-model', 120)
    await waitFor(async () => (await getPool(stack, 'v1-queue-model'))?.slots_busy === 1, { timeoutMs: CEILING_MS, message: 'the slot busy' })
    const queued = await taskCall(stack, key, 'POST', '/v1/chat/completions', {
      body: { model: 'v1-queue-model', stream: true, max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] },
    })
    // The headers came while the slot was still busy.
    expect(queued.status).toBe(200)
    expect((await getPool(stack, 'v1-queue-model'))?.queue_depth).toBe(1)
    const [text] = await Promise.all([queued.text(), holder.text()])
    const firstComment = text.indexOf(': queued position=0')
    expect(firstComment).toBeGreaterThanOrEqual(0)
    expect(firstComment).toBeLessThan(text.indexOf('data: '))
    const content = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice('data: '.length)).choices?.[0]?.delta?.content ?? '')
      .join('')
    expect(content).toBe(expectedText(4))
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
  })
})
