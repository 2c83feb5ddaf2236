import { describe, expect, it } from 'vitest'
import { carriesOutput, isRawChunk, isRecord, mergeChunk } from '../../../../node-agent/relay/chunk-merge.ts'
import type { RawChunk } from '../../../../node-agent/relay/chunk-merge.ts'

/** Parses like the relay does: every chunk is a fresh object the merge may change. */
function chunk(json: unknown): RawChunk {
  const value: unknown = JSON.parse(JSON.stringify(json))
  if (!isRecord(value) || !isRawChunk(value)) throw new Error('not a chunk')
  return value
}

const content = (index: number, text: string, extra: Record<string, unknown> = {}) =>
  chunk({ id: 'x', choices: [{ index, delta: { content: text }, finish_reason: null, ...extra }] })

/** Merges each chunk into the last one where it can, as the batcher does; returns what would travel. */
function coalesce(chunks: RawChunk[]): RawChunk[] {
  const out: RawChunk[] = []
  for (const next of chunks) {
    const last = out.at(-1)
    if (!last || !mergeChunk(last, next)) out.push(next)
  }
  return out
}

describe('merging engine chunks', () => {
  it('joins the content of one choice and keeps its role and the finish reason', () => {
    const merged = coalesce([
      chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }),
      content(0, 'Hel'),
      content(0, 'lo'),
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
    ])
    expect(merged).toEqual([{ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }] }])
  })

  it('keeps each choice of interleaved n>1 chunks apart, by index, each in its own order', () => {
    const merged = coalesce([content(0, 'a'), content(1, 'x'), content(0, 'b'), content(1, 'y'), content(0, 'c', { finish_reason: 'stop' })])
    expect(merged).toHaveLength(1)
    expect(merged[0]?.choices).toEqual([
      { index: 0, delta: { content: 'abc' }, finish_reason: 'stop' },
      { index: 1, delta: { content: 'xy' }, finish_reason: null },
    ])
  })

  it('joins the argument fragments of one tool call, and keeps a second call as its own piece', () => {
    const piece = (call: Record<string, unknown>) => chunk({ choices: [{ index: 0, delta: { content: null, tool_calls: [call] }, finish_reason: null }] })
    const merged = coalesce([
      piece({ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }),
      piece({ index: 0, function: { arguments: '{"ci' } }),
      piece({ index: 0, function: { arguments: 'ty":"Paris"}' } }),
      piece({ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } }),
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
    ])
    expect(merged).toEqual([
      {
        choices: [
          {
            index: 0,
            delta: {
              content: null,
              tool_calls: [
                { index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
                { index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
              ],
            },
            finish_reason: 'tool_calls',
          },
        ],
      },
    ])
  })

  it('does not fold a fragment back into an earlier call once another call started', () => {
    const piece = (call: Record<string, unknown>) => chunk({ choices: [{ index: 0, delta: { tool_calls: [call] } }] })
    const merged = coalesce([
      piece({ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '' } }),
      piece({ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '' } }),
      piece({ index: 0, function: { arguments: '{}' } }),
    ])
    expect(merged).toHaveLength(2)
    expect(merged[1]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] })
  })

  it('joins reasoning and logprobs arrays, chat and legacy completions shapes', () => {
    const entry = (token: string) => ({ token, logprob: -0.5, bytes: [1], top_logprobs: [] })
    const chat = coalesce([
      chunk({ choices: [{ index: 0, delta: { reasoning_content: 'thin' }, logprobs: null }] }),
      chunk({ choices: [{ index: 0, delta: { reasoning_content: 'king' }, logprobs: null }] }),
      chunk({ choices: [{ index: 0, delta: { content: 'a' }, logprobs: { content: [entry('a')], refusal: null } }] }),
      chunk({ choices: [{ index: 0, delta: { content: 'b' }, logprobs: { content: [entry('b')], refusal: null } }] }),
    ])
    expect(chat).toEqual([
      { choices: [{ index: 0, delta: { reasoning_content: 'thinking', content: 'ab' }, logprobs: { content: [entry('a'), entry('b')], refusal: null } }] },
    ])

    const legacy = (text: string, offset: number) =>
      chunk({ choices: [{ index: 0, text, logprobs: { tokens: [text], token_logprobs: [-1], top_logprobs: [{ [text]: -1 }], text_offset: [offset] } }] })
    expect(coalesce([legacy('a', 0), legacy(' b', 1)])).toEqual([
      {
        choices: [
          { index: 0, text: 'a b', logprobs: { tokens: ['a', ' b'], token_logprobs: [-1, -1], top_logprobs: [{ a: -1 }, { ' b': -1 }], text_offset: [0, 1] } },
        ],
      },
    ])
  })

  it('keeps chunks apart, unchanged, where merging would lose something', () => {
    const cases: [RawChunk, RawChunk][] = [
      // An unknown delta field may mean anything.
      [chunk({ choices: [{ index: 0, delta: { content: 'a', audio: { id: 'x' } } }] }), content(0, 'b')],
      // A different unknown chunk-level field.
      [
        chunk({ choices: [{ index: 0, delta: { content: 'a' } }], timings: { n: 1 } }),
        chunk({ choices: [{ index: 0, delta: { content: 'b' } }], timings: { n: 2 } }),
      ],
      // A different system fingerprint, or a new unknown choice-level value (vLLM's stop_reason).
      [
        chunk({ choices: [{ index: 0, delta: { content: 'a' } }], system_fingerprint: 'one' }),
        chunk({ choices: [{ index: 0, delta: { content: 'b' } }], system_fingerprint: 'two' }),
      ],
      [content(0, 'a', { stop_reason: null }), content(0, 'b', { stop_reason: '</s>' })],
      // Usage travels in its own chunk; nothing joins a finished choice.
      [content(0, 'a'), chunk({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })],
      [content(0, 'a', { finish_reason: 'stop' }), content(0, 'b')],
      // A different role, or a value of the wrong type.
      [chunk({ choices: [{ index: 0, delta: { role: 'assistant' } }] }), chunk({ choices: [{ index: 0, delta: { role: 'tool' } }] })],
      [content(0, 'a'), chunk({ choices: [{ index: 0, delta: { content: 5 } }] })],
    ]
    for (const [first, second] of cases) {
      const before = JSON.stringify(first)
      expect(mergeChunk(first, second)).toBe(false)
      expect(JSON.stringify(first)).toBe(before)
    }
  })

  it('passes fields it does not know through where they are equal, and ignores the identity the Worker rewrites', () => {
    const a = chunk({
      id: 'c1',
      created: 1,
      model: 'm',
      system_fingerprint: 'fp',
      engine_extra: 7,
      choices: [{ index: 0, delta: { content: 'a' }, stop_reason: null }],
    })
    const b = chunk({
      id: 'c1',
      created: 2,
      model: 'm',
      system_fingerprint: 'fp',
      engine_extra: 7,
      choices: [{ index: 0, delta: { content: 'b' }, stop_reason: null }],
    })
    expect(mergeChunk(a, b)).toBe(true)
    expect(a).toEqual({
      id: 'c1',
      created: 1,
      model: 'm',
      system_fingerprint: 'fp',
      engine_extra: 7,
      choices: [{ index: 0, delta: { content: 'ab' }, stop_reason: null }],
    })
  })

  it('tells output from a role-only chunk', () => {
    expect(carriesOutput(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }))).toBe(false)
    expect(carriesOutput(chunk({ choices: [] }))).toBe(false)
    expect(carriesOutput(content(0, 'a'))).toBe(true)
    expect(carriesOutput(chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0 }] } }] }))).toBe(true)
    expect(carriesOutput(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }))).toBe(true)
    expect(carriesOutput(chunk({ choices: [{ index: 0, text: 'x' }] }))).toBe(true)
  })
})
