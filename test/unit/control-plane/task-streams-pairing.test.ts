import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PAIRING_WITHIN_MS, TaskStreams } from '../../../control-plane/node/task-streams.ts'
import { decodeTaskEvents } from '../../../control-plane/task/event-stream.ts'
import type { TaskEvent } from '../../../protocol/index.ts'

async function read(stream: ReadableStream<Uint8Array>): Promise<TaskEvent[]> {
  const events: TaskEvent[] = []
  for await (const event of decodeTaskEvents(stream)) events.push(event)
  return events
}

const started: TaskEvent = { kind: 'started' }
const end: TaskEvent = { kind: 'end', finish_reason: 'stop', usage: null }

describe('TaskStreams pairing of a PoolObject dispatch with its reader', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('gives the reader every event whether the dispatch came first, second, or the task ended before it came', async () => {
    const streams = new TaskStreams(() => {})
    streams.dispatched('first', 'p')
    streams.deliver('first', started)
    const early = streams.claim('first', 'p')
    streams.deliver('first', end)

    const late = streams.claim('second', 'p')
    streams.dispatched('second', 'p')
    streams.deliver('second', started)
    streams.deliver('second', end)

    streams.dispatched('ended', 'p')
    streams.deliver('ended', end)
    const after = streams.claim('ended', 'p')

    expect(await read(early)).toEqual([started, end])
    expect(await read(late)).toEqual([started, end])
    expect(await read(after)).toEqual([end])
  })

  it("ends a preempted task's stream with the preemption, and drops a dispatch of it that comes after", async () => {
    const streams = new TaskStreams(() => {})
    const preempted: TaskEvent = { kind: 'error', code: 'preempted', message: 'the slot was given to an interactive task', retriable: true }
    streams.dispatched('running', 'p')
    const running = streams.claim('running', 'p')
    streams.deliver('running', started)
    expect(streams.preempt('running', preempted)).toBe(true)

    const waiting = streams.claim('waiting', 'p')
    expect(streams.preempt('waiting', preempted)).toBe(false)
    expect(streams.dispatched('waiting', 'p')).toBe(false)

    expect(streams.preempt('unseen', preempted)).toBe(false)
    expect(streams.dispatched('unseen', 'p')).toBe(false)
    expect(await read(streams.claim('unseen', 'p'))).toEqual([preempted])
    expect(await read(running)).toEqual([started, preempted])
    expect(await read(waiting)).toEqual([preempted])
    expect(streams.ids()).toEqual([])
  })

  it('ends a reader whose dispatch never came with a retriable node_lost, and cancels a dispatch nobody came to read', async () => {
    const gone: string[] = []
    const streams = new TaskStreams((taskId) => gone.push(taskId))
    const orphanReader = streams.claim('no-dispatch', 'p')
    streams.dispatched('no-reader', 'p')
    vi.advanceTimersByTime(PAIRING_WITHIN_MS)
    expect(await read(orphanReader)).toEqual([expect.objectContaining({ kind: 'error', code: 'node_lost', retriable: true })])
    expect(gone).toEqual(['no-reader'])
    expect(streams.ids()).toEqual([])
  })
})
