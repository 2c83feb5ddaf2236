import OpenAI from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ChatCompletion, ChatCompletionChunk, EmbeddingList, TextCompletion } from '../../protocol/index.ts'
import { chatLogprobs, completionLogprobs, reasoningText, tokenText } from '../fixtures/fake-engine-output.ts'
import { getPool } from '../support/linked-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, openaiClient, servePool as serve } from '../support/openai-stack.ts'
import { fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'

const textOf = (n: number, choice = 0) => Array.from({ length: n }, (_, i) => tokenText(i, choice)).join('')
const messages = [{ role: 'user' as const, content: 'what is the weather' }]
const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]

describe('what the engine sends besides text reaches the official openai client whole', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack
  let openai: OpenAI
  beforeEach(async () => {
    stack = await startStack({ heartbeatIntervalMs: 200 })
    openai = openaiClient(stack, (await createKey(stack)).key)
  })
  afterEach(async () => {
    await stack.stop()
  })
  const servePool = (id: string, options?: Parameters<typeof serve>[3]) => serve(cleanup, stack, id, options)

  it('relays a streamed and a non-streamed tool call with the function name and the exact arguments', async () => {
    const args = '{"city":"Paris","days":3,"note":"a \\"quoted\\" word, ünïcode"}'
    await servePool('tool-model', { fakeArgs: ['--tool-call', 'get_weather', '--tool-arguments', args, '--tool-fragment-chars', '3'] })

    const stream = await openai.chat.completions.create({ model: 'tool-model', messages, tools, stream: true })
    const calls = new Map<number, { id: string; name: string; arguments: string }>()
    let finish: string | null = null
    const ids = new Set<string>()
    for await (const chunk of stream) {
      ids.add(chunk.id)
      expect(chunk).toMatchObject({ object: 'chat.completion.chunk', model: 'tool-model', system_fingerprint: 'fake-0.0.0-fake' })
      for (const piece of chunk.choices[0]?.delta.tool_calls ?? []) {
        const call = calls.get(piece.index) ?? { id: '', name: '', arguments: '' }
        call.id ||= piece.id ?? ''
        call.name += piece.function?.name ?? ''
        call.arguments += piece.function?.arguments ?? ''
        calls.set(piece.index, call)
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect([...calls.values()]).toEqual([{ id: 'call_0_0', name: 'get_weather', arguments: args }])
    expect(finish).toBe('tool_calls')
    expect([...ids]).toEqual([expect.stringMatching(/^chatcmpl-/)])

    // The client's own stream accumulator reads the same call.
    const accumulated = await openai.chat.completions.stream({ model: 'tool-model', messages, tools }).finalChatCompletion()
    expect(accumulated.choices[0]?.message.tool_calls).toEqual([{ id: 'call_0_0', type: 'function', function: { name: 'get_weather', arguments: args } }])

    const whole = await openai.chat.completions.create({ model: 'tool-model', messages, tools })
    expect(whole.choices[0]?.message.content).toBeNull()
    expect(whole.choices[0]?.message.tool_calls).toEqual([{ id: 'call_0_0', type: 'function', function: { name: 'get_weather', arguments: args } }])
    expect(whole.choices[0]?.finish_reason).toBe('tool_calls')
    expect(whole).toMatchObject({ object: 'chat.completion', model: 'tool-model', system_fingerprint: 'fake-0.0.0-fake' })
  })

  it('relays reasoning_content and logprobs intact, streamed and not, on chat and legacy completions', async () => {
    await servePool('reasoning-model', { fakeArgs: ['--tokens', '5', '--reasoning', '3'] })
    const reasoning = Array.from({ length: 3 }, (_, i) => reasoningText(i)).join('')
    const entries = Array.from({ length: 5 }, (_, i) => chatLogprobs(tokenText(i), i, 2).content[0])
    const asked = { model: 'reasoning-model', messages, logprobs: true, top_logprobs: 2 }

    let streamedReasoning = ''
    let streamedText = ''
    const streamedEntries: unknown[] = []
    for await (const raw of await openai.chat.completions.create({ ...asked, stream: true })) {
      const choice = ChatCompletionChunk.parse(raw).choices[0]
      streamedReasoning += choice?.delta?.reasoning_content ?? ''
      streamedText += choice?.delta?.content ?? ''
      streamedEntries.push(...(choice?.logprobs?.content ?? []))
    }
    expect(streamedReasoning).toBe(reasoning)
    expect(streamedText).toBe(textOf(5))
    expect(streamedEntries).toEqual(entries)

    const whole = ChatCompletion.parse(await openai.chat.completions.create(asked))
    expect(whole.choices[0]?.message).toMatchObject({ role: 'assistant', content: textOf(5), reasoning_content: reasoning, refusal: null })
    expect(whole.choices[0]?.logprobs?.content).toEqual(entries)
    expect(whole.usage).toMatchObject({ completion_tokens: 8 })

    const parts = Array.from({ length: 4 }, (_, i) => completionLogprobs(tokenText(i), i, textOf(i).length, 2))
    const legacy = Object.fromEntries(['tokens', 'token_logprobs', 'top_logprobs', 'text_offset'].map((key) => [key, parts.flatMap((p) => p[key] ?? [])]))
    const completion = TextCompletion.parse(await openai.completions.create({ model: 'reasoning-model', prompt: 'once', logprobs: 2, max_tokens: 4 }))
    expect(completion.choices[0]).toMatchObject({ text: textOf(4), logprobs: legacy, finish_reason: 'length' })
    const streamedLegacy: Record<string, unknown[]> = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }
    for await (const chunk of await openai.completions.create({ model: 'reasoning-model', prompt: 'once', logprobs: 2, max_tokens: 4, stream: true })) {
      const logprobs = chunk.choices[0]?.logprobs
      for (const key of Object.keys(streamedLegacy)) streamedLegacy[key]?.push(...(logprobs ? (Reflect.get(logprobs, key) ?? []) : []))
    }
    expect(streamedLegacy).toEqual(legacy)
  })

  it('gives n=2 two choices with their own text, streamed and not, and usage counts both', async () => {
    await servePool('n-model', { fakeArgs: ['--tokens', '4'] })
    const texts = new Map<number, string>()
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of await openai.chat.completions.create({
      model: 'n-model',
      messages,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      for (const choice of chunk.choices) texts.set(choice.index, (texts.get(choice.index) ?? '') + (choice.delta.content ?? ''))
      usage = chunk.usage ?? usage
    }
    expect([...texts].sort(([a], [b]) => a - b)).toEqual([
      [0, textOf(4, 0)],
      [1, textOf(4, 1)],
    ])
    expect(usage).toMatchObject({ completion_tokens: 8 })

    const whole = await openai.chat.completions.create({ model: 'n-model', messages, n: 2 })
    expect(whole.choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, textOf(4, 0), 'stop'],
      [1, textOf(4, 1), 'stop'],
    ])
    expect(whole.usage?.completion_tokens).toBe(8)
  })

  it('returns the engine vectors for embeddings with usage, and a clear 400 from engines that serve none', async () => {
    const { engineUrl } = await servePool('embed-model', { fakeArgs: ['--embedding-dims', '16'] })
    const input = ['hello world', 'a second input']
    const direct = EmbeddingList.parse(
      await (await fetch(`${engineUrl}/v1/embeddings`, { method: 'POST', body: JSON.stringify({ input, encoding_format: 'float' }) })).json(),
    )

    // The client asks for base64 by default and decodes it; both ways give the engine's vectors.
    const decoded = await openai.embeddings.create({ model: 'embed-model', input })
    expect(decoded.data.map((d) => [d.index, Array.from(d.embedding)])).toEqual(direct.data.map((d) => [d.index, d.embedding]))
    expect(decoded).toMatchObject({ object: 'list', model: 'embed-model', usage: { prompt_tokens: 5, total_tokens: 5 } })
    const floats = await openai.embeddings.create({ model: 'embed-model', input: 'hello world', encoding_format: 'float', dimensions: 4 })
    expect(floats.data[0]?.embedding).toHaveLength(4)
    expect((await getPool(stack, 'embed-model'))?.slots_busy).toBe(0)

    for (const status of ['501', '404']) {
      await servePool(`plain-model-${status}`, { fakeArgs: ['--refuse-embeddings', status] })
      const refused = openai.embeddings.create({ model: `plain-model-${status}`, input: 'hello' })
      await expect(refused).rejects.toBeInstanceOf(OpenAI.BadRequestError)
      await expect(refused).rejects.toMatchObject({
        code: 'invalid_request',
        message: expect.stringContaining(`does not serve embeddings: engine of pool "plain-model-${status}" answered HTTP ${status}`),
      })
    }
  })

  it('aborts the engine request within a second when a non-streamed client goes away, and frees the slot', async () => {
    const { engineUrl } = await servePool('abort-whole-model', { slots: 1, fakeArgs: ['--tokens', '1000', '--tokens-per-second', '50'] })
    const controller = new AbortController()
    const reply = openai.chat.completions.create({ model: 'abort-whole-model', messages }, { signal: controller.signal })
    await waitFor(async () => (await fakeEngineStats(engineUrl)).active === 1, { timeoutMs: CEILING_MS, message: 'the request generating at the engine' })
    controller.abort()
    const abortedAt = Date.now()
    await expect(reply).rejects.toBeInstanceOf(OpenAI.APIUserAbortError)
    await waitFor(async () => (await fakeEngineStats(engineUrl)).aborted === 1, {
      timeoutMs: 1_000,
      intervalMs: 10,
      message: 'the engine recording the abort within 1 s',
    })
    expect(Date.now() - abortedAt).toBeLessThan(1_000)

    const next = await openai.chat.completions.create({ model: 'abort-whole-model', messages, max_tokens: 3 })
    expect(next.choices[0]?.message.content).toBe(textOf(3))
    expect((await getPool(stack, 'abort-whole-model'))?.slots_busy).toBe(0)
  })

  it('keeps a long non-streamed reply alive with leading spaces, and ends it with the error object when the engine fails late', async () => {
    const { key } = await createKey(stack)
    await servePool('late-failure-model', { fakeArgs: ['--tokens', '100', '--tokens-per-second', '50', '--error-after-tokens', '25'] })
    const response = await fetch(new URL('/v1/chat/completions', stack.url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'late-failure-model', messages }),
    })
    expect(response.status).toBe(200)
    const body = await response.text()
    expect(body).toMatch(/^ +\{/)
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'engine_error', message: expect.stringContaining('reported an error mid-stream') } })
  })
})
