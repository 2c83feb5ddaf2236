import { describe, expect, it } from 'vitest'
import { CompletionAssembler } from '../../../control-plane/answer/openai-assembly.ts'
import { ChatCompletion, TextCompletion } from '../../../protocol/index.ts'
import type { EngineChunk } from '../../../protocol/index.ts'

const chat = { id: 'chatcmpl-t', created: 1, model: 'pool-a', endpoint: 'chat' } as const
const completions = { id: 'cmpl-t', created: 1, model: 'pool-a', endpoint: 'completions' } as const
const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }

function assemble(chunks: EngineChunk[]): CompletionAssembler {
  const assembler = new CompletionAssembler()
  // Batches of any size give the same reply.
  for (const chunk of chunks) assembler.add([chunk])
  return assembler
}

describe('non-streamed replies assembled from the engine chunks', () => {
  it('answers a tool call with its whole arguments, content null and finish tool_calls', () => {
    const reply = assemble([
      { choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] },
      {
        choices: [
          { index: 0, delta: { content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] } },
        ],
      },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] } }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
    ]).chat(chat, usage)
    expect(ChatCompletion.parse(reply)).toEqual(reply)
    expect(reply.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ])
  })

  it('sorts interleaved choices by index, each with its own text, reasoning and logprobs', () => {
    const entry = (token: string) => ({ token, logprob: -1, bytes: null, top_logprobs: [] })
    const reply = assemble([
      { choices: [{ index: 1, delta: { reasoning_content: 'hm' } }] },
      { choices: [{ index: 0, delta: { content: 'a' }, logprobs: { content: [entry('a')] } }] },
      { choices: [{ index: 1, delta: { content: 'x' }, logprobs: { content: [entry('x')] } }] },
      {
        choices: [
          { index: 0, delta: { content: 'b' }, logprobs: { content: [entry('b')] } },
          { index: 1, delta: {}, finish_reason: 'length' },
        ],
      },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    ]).chat(chat, usage)
    expect(reply.choices.map((c) => [c.index, c.message.content, c.message.reasoning_content, c.logprobs?.content, c.finish_reason])).toEqual([
      [0, 'ab', undefined, [entry('a'), entry('b')], 'stop'],
      [1, 'x', 'hm', [entry('x')], 'length'],
    ])
  })

  it('keeps fields it does not know: joined when text, last value otherwise, and the engine usage and fingerprint', () => {
    const engineUsage = { ...usage, completion_tokens_details: { reasoning_tokens: 2 } }
    const reply = assemble([
      { system_fingerprint: 'fp-1', timings: { n: 1 }, choices: [{ index: 0, delta: { reasoning: 'th', annotations: [1] }, stop_reason: null }] },
      { system_fingerprint: 'fp-1', timings: { n: 2 }, choices: [{ index: 0, delta: { reasoning: 'ink', content: 'ok' }, stop_reason: 42 }] },
      { choices: [], usage: engineUsage },
    ]).chat(chat, usage)
    expect(reply).toMatchObject({ system_fingerprint: 'fp-1', timings: { n: 2 }, usage: engineUsage })
    expect(reply.choices[0]).toMatchObject({ stop_reason: 42, message: { content: 'ok', reasoning: 'think', annotations: [1] }, finish_reason: 'stop' })
  })

  it('takes the end event usage when the engine sent none, and answers one empty choice when it sent no chunk', () => {
    const reply = new CompletionAssembler().chat(chat, usage)
    expect(reply.usage).toEqual(usage)
    expect(reply.choices).toEqual([{ index: 0, message: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: 'stop' }])
  })

  it('answers legacy completions with text and the parallel logprobs arrays joined', () => {
    const reply = assemble([
      { choices: [{ index: 0, text: 'a', logprobs: { tokens: ['a'], token_logprobs: [-1], top_logprobs: [{ a: -1 }], text_offset: [0] } }] },
      { choices: [{ index: 0, text: ' b', logprobs: { tokens: [' b'], token_logprobs: [-2], top_logprobs: [{ ' b': -2 }], text_offset: [1] } }] },
      { choices: [{ index: 0, text: '', finish_reason: 'length' }] },
    ]).text(completions, usage)
    expect(TextCompletion.parse(reply)).toEqual(reply)
    expect(reply).toMatchObject({ object: 'text_completion', id: 'cmpl-t', model: 'pool-a' })
    expect(reply.choices).toEqual([
      {
        index: 0,
        text: 'a b',
        logprobs: { tokens: ['a', ' b'], token_logprobs: [-1, -2], top_logprobs: [{ a: -1 }, { ' b': -2 }], text_offset: [0, 1] },
        finish_reason: 'length',
      },
    ])
  })
})
