import { describe, expect, it } from 'vitest'
import { MAX_CHOICES, MAX_CHUNKS_PER_BATCH, MAX_TOOL_CALLS, parseAgentFrame } from '../../../protocol/index.ts'

const frame = (event: unknown) => JSON.stringify({ type: 'task_event', task_id: 't1', event })
const deltas = (chunks: unknown[]) => frame({ kind: 'deltas', seq: 0, chunks })

describe('task events on the wire (protocol 2)', () => {
  it('carries the engine chunks loosely: fields nobody declared pass at every level', () => {
    const chunk = {
      system_fingerprint: 'fp',
      timings: { ms: 3 },
      choices: [
        {
          index: 1,
          delta: { content: 'a', reasoning: 'r', audio: { id: 'x' }, tool_calls: [{ index: 0, function: { arguments: '{' }, extra: 1 }] },
          logprobs: { content: [{ token: 'a' }] },
          stop_reason: null,
        },
      ],
    }
    const parsed = parseAgentFrame(deltas([chunk]))
    expect(parsed).toEqual({ ok: true, frame: { type: 'task_event', task_id: 't1', event: { kind: 'deltas', seq: 0, chunks: [chunk] } } })
  })

  it('refuses what the Worker could not relay: wrong types, missing indexes, and sizes past the bounds', () => {
    const refused = [
      deltas([]),
      deltas([{ choices: [{ index: 0, delta: { content: 5 } }] }]),
      deltas([{ choices: [{ delta: { content: 'a' } }] }]),
      deltas([{ choices: [{ index: MAX_CHOICES, delta: {} }] }]),
      deltas([{ choices: Array.from({ length: MAX_CHOICES + 1 }, (_, index) => ({ index: index % MAX_CHOICES })) }]),
      deltas([{ choices: [{ index: 0, delta: { tool_calls: Array.from({ length: MAX_TOOL_CALLS + 1 }, () => ({ index: 0 })) } }] }]),
      deltas(Array.from({ length: MAX_CHUNKS_PER_BATCH + 1 }, () => ({ choices: [] }))),
      frame({ kind: 'embeddings', seq: 0, data: [{ index: 0, embedding: [1, 'two'] }] }),
      // Protocol 1's text-only event is gone.
      frame({ kind: 'tokens', seq: 0, text: 'hi' }),
    ]
    for (const raw of refused) expect(parseAgentFrame(raw)).toMatchObject({ ok: false, error: { type: 'error', code: 'invalid_request' } })
  })
})
