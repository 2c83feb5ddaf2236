import { describe, expect, it } from 'vitest'
import { decodeTaskEvents, encodeTaskEvent } from '../../../control-plane/task/event-stream.ts'
import type { TaskEvent } from '../../../protocol/index.ts'

const events: TaskEvent[] = [
  { kind: 'started' },
  { kind: 'deltas', seq: 0, chunks: [{ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello, ' } }] }] },
  {
    kind: 'deltas',
    seq: 1,
    chunks: [{ choices: [{ index: 0, delta: { content: 'line\nbreak and ünïcode' }, engine_note: { nested: [1] } }], system_fingerprint: 'fp' }],
  },
  { kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
]

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk)
      controller.close()
    },
  })
}

async function decodeAll(stream: ReadableStream<Uint8Array>): Promise<TaskEvent[]> {
  const out: TaskEvent[] = []
  for await (const event of decodeTaskEvents(stream)) out.push(event)
  return out
}

describe('task event stream', () => {
  it('reads back every event in order', async () => {
    expect(await decodeAll(streamOf(events.map(encodeTaskEvent)))).toEqual(events)
  })

  it('reads events split across chunks at any byte, multi-byte characters included', async () => {
    const bytes = new Uint8Array(events.map(encodeTaskEvent).flatMap((chunk) => [...chunk]))
    for (const size of [1, 3, 7, 64]) {
      const chunks: Uint8Array[] = []
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size))
      expect(await decodeAll(streamOf(chunks))).toEqual(events)
    }
  })
})
