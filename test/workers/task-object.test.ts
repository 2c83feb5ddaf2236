import { env, runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { TaskSpec } from '../../control-plane/native-task/task-spec.ts'
import type { TaskEvent } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, linkedAgent } from './agent-socket.ts'
import type { AgentSocket } from './agent-socket.ts'
import { crashDurableObject, uniqueName } from './support.ts'

const KEY = 'key_task_object_test'
const POLL_MS = 20

interface SseEvent {
  id: number | null
  event: string
  data: unknown
}

function spec(pool: string, attachWithinMs = 30_000): TaskSpec {
  return {
    taskId: crypto.randomUUID(),
    poolId: pool,
    apiKeyId: KEY,
    keyLimits: {},
    affinityKey: undefined,
    priority: undefined,
    attachWithinMs,
    generation: { endpoint: 'chat', body: { model: pool, messages: [{ role: 'user', content: 'hi' }] } },
    requestId: null,
  }
}

/** Reads SSE events off a stream until `stop` says so or it ends. */
async function readEvents(stream: ReadableStream<Uint8Array>, stop: (event: SseEvent) => boolean): Promise<SseEvent[]> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader()
  const events: SseEvent[] = []
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return events
    buffer += value
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const field = (name: string) =>
        block
          .split('\n')
          .find((line) => line.startsWith(`${name}: `))
          ?.slice(name.length + 2)
      const event = field('event')
      if (event === undefined) continue
      const id = field('id')
      const parsed = { id: id === undefined ? null : Number(id), event, data: JSON.parse(field('data') ?? 'null') }
      events.push(parsed)
      if (stop(parsed)) {
        await reader.cancel()
        return events
      }
    }
  }
}

function sendEvent(agent: AgentSocket, taskId: string, event: TaskEvent): void {
  agent.send({ type: 'task_event', task_id: taskId, event })
}

describe('TaskObject', () => {
  it('expires a task nobody read at its alarm: it leaves the queue and answers task_expired', async () => {
    const pool = uniqueName('model')
    await linkedAgent(pool)
    const task = spec(pool, 1)
    const stub = env.TASKS.getByName(task.taskId)
    const created = await stub.create(task)
    if (!created.ok) throw new Error(created.error.message)
    while (Date.now() <= created.attachBy) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(await runDurableObjectAlarm(stub)).toBe(true)
    const viewed = await stub.view({ apiKeyId: KEY })
    expect(viewed).toMatchObject({ ok: true, value: { state: 'expired', error: { code: 'task_expired' } } })
    expect(await stub.attach({ apiKeyId: KEY, lastEventId: 0 })).toMatchObject({ ok: false, error: { code: 'task_expired' } })
    expect((await env.POOLS.getByName(pool).status()).queueDepth).toBe(0)
  })

  it('ends a task it was running when it restarts with node_lost, and a reader resuming after its last id gets that ending', async () => {
    const pool = uniqueName('model')
    const agent = await linkedAgent(pool)
    const task = spec(pool)
    const stub = env.TASKS.getByName(task.taskId)
    expect(await stub.create(task)).toMatchObject({ ok: true })
    const attached = await stub.attach({ apiKeyId: KEY, lastEventId: 0 })
    if (!attached.ok || !attached.stream) throw new Error('expected a stream')
    const dispatch = await agent.next()
    expect(dispatch).toMatchObject({ type: 'dispatch', task_id: task.taskId })
    sendEvent(agent, task.taskId, { kind: 'started' })
    sendEvent(agent, task.taskId, { kind: 'deltas', seq: 0, chunks: [{ choices: [{ index: 0, delta: { content: 'hello' }, finish_reason: null }] }] })
    const seen = await readEvents(attached.stream, (event) => event.event === 'token')
    const lastSeen = seen.at(-1)?.id ?? 0
    expect(seen.map((e) => e.event)).toContain('started')

    // The control plane restarts: the task's object loses its memory.
    await crashDurableObject(stub)
    const restarted = env.TASKS.getByName(task.taskId)
    expect(await restarted.view({ apiKeyId: KEY })).toMatchObject({ ok: true, value: { state: 'failed', error: { code: 'node_lost' } } })
    const resumed = await restarted.attach({ apiKeyId: KEY, lastEventId: lastSeen })
    if (!resumed.ok || !resumed.stream) throw new Error(`expected the ending after id ${lastSeen}, got ${JSON.stringify(resumed)}`)
    const ending = await readEvents(resumed.stream, () => false)
    expect(ending.map((e) => e.event)).toEqual(['error'])
    expect(ending[0]?.data).toMatchObject({ code: 'node_lost', retriable: true })
    expect(ending[0]?.id).toBeGreaterThan(lastSeen)
  })

  it('replays every event after the id a reader had, once, when it comes back before the end', async () => {
    const pool = uniqueName('model')
    const agent = await linkedAgent(pool)
    const task = spec(pool)
    const stub = env.TASKS.getByName(task.taskId)
    expect(await stub.create(task)).toMatchObject({ ok: true })
    const first = await stub.attach({ apiKeyId: KEY, lastEventId: 0 })
    if (!first.ok || !first.stream) throw new Error('expected a stream')
    expect(await agent.next()).toMatchObject({ type: 'dispatch', task_id: task.taskId })
    sendEvent(agent, task.taskId, { kind: 'started' })
    const before = await readEvents(first.stream, (event) => event.event === 'started')
    const lastSeen = before.at(-1)?.id ?? 0
    sendEvent(agent, task.taskId, { kind: 'deltas', seq: 0, chunks: [{ choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] }] })
    sendEvent(agent, task.taskId, { kind: 'end', finish_reason: 'stop', usage: null })
    const deadline = Date.now() + EVENT_CEILING_MS
    for (;;) {
      const viewed = await stub.view({ apiKeyId: KEY })
      if (viewed.ok && viewed.value.state === 'completed') break
      if (Date.now() > deadline) throw new Error('the task never completed')
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
    const again = await stub.attach({ apiKeyId: KEY, lastEventId: lastSeen })
    if (!again.ok || !again.stream) throw new Error('expected the rest of the events')
    const rest = await readEvents(again.stream, () => false)
    expect(rest.map((e) => e.event)).toEqual(['token', 'metrics', 'end'])
    expect(rest.map((e) => e.id)).toEqual([lastSeen + 1, lastSeen + 2, lastSeen + 3])
    expect(await stub.attach({ apiKeyId: KEY, lastEventId: lastSeen + 3 })).toEqual({ ok: true, stream: null })
  })
})
