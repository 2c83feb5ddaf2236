import { z } from 'zod'
import type { Stack } from '../support/local-stack.ts'

/** What one client saw of one streamed chat completion. */
export interface ClientOutcome {
  /** The stream ended with `[DONE]`. */
  ok: boolean
  /** HTTP status, 0 when the connection failed. */
  status: number
  text: string
  /** The error code the client was given (HTTP error body or error chunk), or `connection` when the connection broke. */
  errorCode: string | null
  /** Content arrived before the error: the task had started, so it could not move invisibly. */
  sawTokens: boolean
  ms: number
}

/** What a client reads of a chunk or an error body: the text delta and the error code. */
const Received = z.looseObject({
  choices: z.array(z.looseObject({ delta: z.looseObject({ content: z.string().nullish() }).nullish() })).nullish(),
  error: z.looseObject({ code: z.unknown() }).nullish(),
})

const codeOf = (body: unknown): string => String(Received.parse(body).error?.code ?? 'unknown')

/** Streams one chat completion with plain fetch, so every byte the client gets is seen as it is; `onAnswered` runs once the status came. */
export async function streamChat(
  stack: Stack,
  key: string,
  model: string,
  maxTokens: number,
  signal?: AbortSignal,
  onAnswered?: (status: number) => void,
): Promise<ClientOutcome> {
  const startedAt = performance.now()
  const done = (outcome: Omit<ClientOutcome, 'ms'>): ClientOutcome => ({ ...outcome, ms: Math.round(performance.now() - startedAt) })
  let text = ''
  let status = 0
  try {
    const response = await fetch(new URL('/v1/chat/completions', stack.url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'fault suite' }] }),
      ...(signal ? { signal } : {}),
    })
    status = response.status
    onAnswered?.(status)
    if (!response.ok) return done({ ok: false, status, text, errorCode: codeOf(await response.json()), sawTokens: false })
    let buffered = ''
    for await (const chunk of response.body ?? []) {
      buffered += Buffer.from(chunk).toString('utf8')
      let end = buffered.indexOf('\n\n')
      while (end !== -1) {
        const event = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        end = buffered.indexOf('\n\n')
        if (!event.startsWith('data: ')) continue
        const data = event.slice('data: '.length)
        if (data === '[DONE]') return done({ ok: true, status, text, errorCode: null, sawTokens: text !== '' })
        const received = Received.parse(JSON.parse(data))
        text += received.choices?.[0]?.delta?.content ?? ''
        if (received.error) return done({ ok: false, status, text, errorCode: String(received.error.code), sawTokens: text !== '' })
      }
    }
    return done({ ok: false, status, text, errorCode: 'no_end', sawTokens: text !== '' })
  } catch {
    return done({ ok: false, status, text, errorCode: signal?.aborted ? 'aborted' : 'connection', sawTokens: text !== '' })
  }
}
