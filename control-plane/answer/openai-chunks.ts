import type { ChatCompletionChunk, EngineChoice, EngineChunk, EngineUsage, GenerationEndpoint, TextCompletionChunk, Usage } from '../../protocol/index.ts'

/** What every chunk of one response repeats. */
export interface ResponseIdentity {
  id: string
  created: number
  model: string
  endpoint: GenerationEndpoint
}

export type ClientChunk = ChatCompletionChunk | TextCompletionChunk

export const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }

/** The chunk with llorch's id, model and created; every other field is the engine's. */
export function stamp(identity: ResponseIdentity, chunk: EngineChunk): ClientChunk {
  const { id, created, model } = identity
  return identity.endpoint === 'chat'
    ? { ...chunk, id, object: 'chat.completion.chunk', created, model }
    : { ...chunk, id, object: 'text_completion', created, model }
}

/**
 * Turns the engine's chunks into the client's, in the engine's order and with its fields: only
 * `id`, `object`, `model` and `created` are rewritten. As in OpenAI's streams, the first delta of
 * each chat choice names the assistant role, and usage travels only when the client asked for it
 * (`stream_options.include_usage`), in a last chunk without choices.
 */
export class StreamShaper {
  readonly #identity: ResponseIdentity
  readonly #includeUsage: boolean
  readonly #roleSent = new Set<number>()
  #usageSent = false

  constructor(identity: ResponseIdentity, { includeUsage }: { includeUsage: boolean }) {
    this.#identity = identity
    this.#includeUsage = includeUsage
  }

  /** The client's chunks for one batch of the engine's. */
  shape(chunks: readonly EngineChunk[]): ClientChunk[] {
    const out: ClientChunk[] = []
    for (const chunk of chunks) {
      if (chunk.choices.length === 0 && chunk.usage) {
        if (!this.#includeUsage) continue
        this.#usageSent = true
        out.push(stamp(this.#identity, chunk))
        continue
      }
      const { usage: _unasked, ...withoutUsage } = chunk
      const relayed = this.#includeUsage ? chunk : withoutUsage
      out.push(stamp(this.#identity, this.#identity.endpoint === 'chat' ? { ...relayed, choices: chunk.choices.map((c) => this.#withRole(c)) } : relayed))
    }
    return out
  }

  /** What ends a finished stream: the usage chunk, when asked for and the engine sent none. */
  finish(usage: EngineUsage | null): ClientChunk[] {
    if (!this.#includeUsage || this.#usageSent) return []
    this.#usageSent = true
    return [stamp(this.#identity, { choices: [], usage: usage ?? ZERO_USAGE })]
  }

  #withRole(choice: EngineChoice): EngineChoice {
    if (this.#roleSent.has(choice.index)) return choice
    this.#roleSent.add(choice.index)
    if (choice.delta?.role) return choice
    return { ...choice, delta: { role: 'assistant', ...choice.delta } }
  }
}

const encoder = new TextEncoder()

/** Server-sent events, one `data:` line per value. */
export function sseEvents(values: readonly unknown[]): Uint8Array {
  let text = ''
  for (const value of values) text += `data: ${JSON.stringify(value)}\n\n`
  return encoder.encode(text)
}
