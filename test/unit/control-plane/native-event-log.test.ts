import { describe, expect, it } from 'vitest'
import { EventLog } from '../../../control-plane/native-task/event-log.ts'
import { MAX_KEPT_TASK_EVENTS } from '../../../protocol/index.ts'
import type { NativeTaskEvent } from '../../../protocol/index.ts'

const token = (text: string): NativeTaskEvent => ({ event: 'token', data: { choices: [{ index: 0, delta: { content: text } }] } })

describe('EventLog', () => {
  it('numbers events from 1 and replays everything after an id', () => {
    const log = new EventLog()
    for (const text of ['a', 'b', 'c']) log.append(token(text))
    expect(log.lastId).toBe(3)
    expect(log.after(0)).toEqual({ ok: true, events: [1, 2, 3].map((id, i) => ({ id, event: token('abc'[i] ?? '') })) })
    expect(log.after(2)).toEqual({ ok: true, events: [{ id: 3, event: token('c') }] })
    expect(log.after(3)).toEqual({ ok: true, events: [] })
  })

  it('keeps the newest events only, and says so when a reader asks for dropped ones', () => {
    const log = new EventLog()
    for (let i = 0; i < MAX_KEPT_TASK_EVENTS + 10; i += 1) log.append(token(String(i)))
    expect(log.after(5)).toEqual({ ok: false, oldestKeptId: 11 })
    const replay = log.after(10)
    expect(replay.ok && replay.events.length).toBe(MAX_KEPT_TASK_EVENTS)
    expect(replay.ok && replay.events[0]?.id).toBe(11)
  })

  it('continues above the ids of an earlier instance, and gives a reader of any of those what came after', () => {
    const log = new EventLog(41)
    expect(log.after(40)).toEqual({ ok: true, events: [] })
    expect(log.append(token('x')).id).toBe(42)
    expect(log.after(41)).toEqual({ ok: true, events: [{ id: 42, event: token('x') }] })
    expect(log.after(7)).toEqual({ ok: true, events: [{ id: 42, event: token('x') }] })
  })
})
