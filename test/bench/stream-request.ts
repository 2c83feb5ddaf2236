import { createParser } from 'eventsource-parser'
import { z } from 'zod'

export type BenchPath = 'direct' | 'relay'

/** Where one path's streaming chat completions go. */
export interface StreamTarget {
  path: BenchPath
  /** The full URL of `/v1/chat/completions`. */
  url: string
  model: string
  headers: Record<string, string>
  /** The pool streams a tool call with these arguments (in fragments) instead of text. */
  toolArguments?: string
}

/** One streamed request as the client saw it. */
export interface StreamSample {
  /** Request sent → first chunk with content. */
  ttftMs: number | null
  /** Request sent → `data: [DONE]`. */
  durationMs: number
  /** Tokens counted in the content (the fake engine streams `tok0 tok1 …`, one word each). */
  tokens: number
  error: string | null
}

/** Neither path may take this long for one request; a hang becomes an error sample. */
export const REQUEST_TIMEOUT_MS = 60_000

const ToolCallPiece = z.object({ function: z.object({ arguments: z.string().nullish() }).nullish() })
const Chunk = z.object({
  choices: z.array(z.object({ delta: z.object({ content: z.string().nullish(), tool_calls: z.array(ToolCallPiece).nullish() }).nullish() })).nullish(),
  usage: z.object({ completion_tokens: z.number() }).nullish(),
  error: z.unknown().optional(),
})

const countWords = (text: string) => text.match(/\S+/g)?.length ?? 0

/**
 * Sends one streaming chat completion and measures it the same way on both paths: a real SSE
 * parser, tokens counted from the content (batched or not), checked against `max_tokens` and
 * against the usage chunk the stream ends with.
 */
export async function streamOnce(target: StreamTarget, maxTokens: number, extraBody: Record<string, unknown> = {}): Promise<StreamSample> {
  const body = JSON.stringify({
    model: target.model,
    messages: [{ role: 'user', content: 'benchmark' }],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: maxTokens,
    ...extraBody,
  })
  const started = performance.now()
  let ttftMs: number | null = null
  let text = ''
  let toolArguments = ''
  let usageTokens: number | null = null
  let done = false
  let error: string | null = null
  // A tool call's fragments may arrive merged on one path and not the other: its tokens are the engine's count.
  const tokensSeen = () => (target.toolArguments === undefined ? countWords(text) : (usageTokens ?? 0))
  const sample = (): StreamSample => ({ ttftMs, durationMs: performance.now() - started, tokens: tokensSeen(), error })

  const parser = createParser({
    onEvent(event) {
      if (done || error !== null) return
      if (event.data === '[DONE]') {
        done = true
        return
      }
      let json: unknown
      try {
        json = JSON.parse(event.data)
      } catch {
        error = `data line is not JSON: ${event.data.slice(0, 120)}`
        return
      }
      const chunk = Chunk.safeParse(json)
      if (!chunk.success) {
        error = `chunk of unexpected shape: ${event.data.slice(0, 120)}`
        return
      }
      if (chunk.data.error !== undefined && chunk.data.error !== null) {
        error = `error event: ${JSON.stringify(chunk.data.error).slice(0, 200)}`
        return
      }
      if (chunk.data.usage) usageTokens = chunk.data.usage.completion_tokens
      const delta = chunk.data.choices?.[0]?.delta
      const content = delta?.content ?? ''
      const fragment = (delta?.tool_calls ?? []).map((piece) => piece.function?.arguments ?? '').join('')
      if (content === '' && fragment === '') return
      ttftMs ??= performance.now() - started
      text += content
      toolArguments += fragment
    },
  })

  try {
    const response = await fetch(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...target.headers },
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    if (response.status !== 200 || response.body === null) {
      error = `HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`
      return sample()
    }
    for await (const piece of response.body.pipeThrough(new TextDecoderStream())) {
      parser.feed(piece)
      if (error !== null) break
    }
  } catch (caught) {
    error ??= caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)
  }
  const result = sample()
  if (result.error !== null) return result
  if (!done) return { ...result, error: 'the stream ended without data: [DONE]' }
  if (target.toolArguments !== undefined) {
    return toolArguments === target.toolArguments ? result : { ...result, error: `tool call arguments differ: ${toolArguments.slice(0, 80)}` }
  }
  if (result.tokens !== maxTokens) return { ...result, error: `expected ${maxTokens} tokens, counted ${result.tokens}` }
  if (usageTokens !== null && usageTokens !== result.tokens)
    return { ...result, error: `usage says ${usageTokens} completion tokens, counted ${result.tokens}` }
  return result
}
