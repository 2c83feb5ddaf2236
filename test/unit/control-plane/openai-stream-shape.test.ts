import { describe, expect, it } from 'vitest'
import { StreamShaper } from '../../../control-plane/answer/openai-chunks.ts'
import { ChatCompletionChunk, TextCompletionChunk } from '../../../protocol/index.ts'
import type { EngineChunk } from '../../../protocol/index.ts'

const chat = { id: 'chatcmpl-t', created: 7, model: 'pool-a', endpoint: 'chat' } as const
const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }

describe('streamed chunks as the client gets them', () => {
  it('keeps the engine chunks, their order and their fields, rewriting only id, object, model and created', () => {
    const chunks: EngineChunk[] = [
      {
        system_fingerprint: 'fp',
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: 'a', tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '' } }] },
            logprobs: null,
            engine_field: 1,
          },
        ],
      },
      { choices: [{ index: 1, delta: { reasoning_content: 'x' } }], model: 'engine-own-name' },
    ]
    const out = new StreamShaper(chat, { includeUsage: false }).shape(chunks)
    for (const chunk of out) ChatCompletionChunk.parse(chunk)
    expect(out).toEqual([
      { ...chunks[0], id: 'chatcmpl-t', object: 'chat.completion.chunk', created: 7, model: 'pool-a' },
      {
        choices: [{ index: 1, delta: { role: 'assistant', reasoning_content: 'x' } }],
        id: 'chatcmpl-t',
        object: 'chat.completion.chunk',
        created: 7,
        model: 'pool-a',
      },
    ])
  })

  it('names the assistant role in the first delta of each chat choice only', () => {
    const shaper = new StreamShaper(chat, { includeUsage: false })
    const deltas = [
      ...shaper.shape([{ choices: [{ index: 0, delta: { content: 'a' } }] }]),
      ...shaper.shape([
        {
          choices: [
            { index: 0, delta: { content: 'b' } },
            { index: 1, delta: { content: 'x' } },
          ],
        },
      ]),
    ].flatMap((c) => c.choices.map((choice) => [choice.index, choice.delta]))
    expect(deltas).toEqual([
      [0, { role: 'assistant', content: 'a' }],
      [0, { content: 'b' }],
      [1, { role: 'assistant', content: 'x' }],
    ])
  })

  it('relays usage only when asked: the engine usage chunk, or one made from the end event', () => {
    const engineUsage = { ...usage, prompt_tokens_details: { cached_tokens: 1 } }
    const withUsage: EngineChunk[] = [
      { choices: [{ index: 0, delta: { content: 'a' } }], usage: null },
      { choices: [], usage: engineUsage },
    ]

    const unasked = new StreamShaper(chat, { includeUsage: false })
    expect(unasked.shape(withUsage).map((c) => 'usage' in c)).toEqual([false])
    expect(unasked.finish(usage)).toEqual([])

    const asked = new StreamShaper(chat, { includeUsage: true })
    expect(asked.shape(withUsage).at(-1)).toEqual({
      choices: [],
      usage: engineUsage,
      id: 'chatcmpl-t',
      object: 'chat.completion.chunk',
      created: 7,
      model: 'pool-a',
    })
    expect(asked.finish(usage)).toEqual([])

    const silentEngine = new StreamShaper(chat, { includeUsage: true })
    expect(silentEngine.finish(usage)).toEqual([{ choices: [], usage, id: 'chatcmpl-t', object: 'chat.completion.chunk', created: 7, model: 'pool-a' }])
  })

  it('shapes legacy completions chunks without a role', () => {
    const out = new StreamShaper({ ...chat, id: 'cmpl-t', endpoint: 'completions' }, { includeUsage: false }).shape([
      { choices: [{ index: 0, text: 'a', logprobs: { tokens: ['a'], token_logprobs: [-1], top_logprobs: [null], text_offset: [0] }, finish_reason: null }] },
    ])
    expect(TextCompletionChunk.parse(out[0])).toEqual({
      id: 'cmpl-t',
      object: 'text_completion',
      created: 7,
      model: 'pool-a',
      choices: [{ index: 0, text: 'a', logprobs: { tokens: ['a'], token_logprobs: [-1], top_logprobs: [null], text_offset: [0] }, finish_reason: null }],
    })
  })
})
