import type {
  ChatCompletion,
  ChatLogprobs,
  EngineChoice,
  EngineChunk,
  EngineUsage,
  TextCompletion,
  TextLogprobs,
  ToolCall,
  ToolCallDelta,
  Usage,
} from '../../protocol/index.ts'
import { ZERO_USAGE } from './openai-chunks.ts'
import type { ResponseIdentity } from './openai-chunks.ts'

interface ToolCallParts {
  id: string | null
  type: string | null
  name: string | null
  arguments: string
  /** Fields of the engine's own, last value wins. */
  extra: Record<string, unknown>
}

interface ChoiceParts {
  /** Text fields of the deltas (content, reasoning_content, refusal, unknown ones) and `text`, joined. */
  texts: Map<string, string>
  toolCalls: Map<number, ToolCallParts>
  /** Logprobs arrays by field (`content`, or the legacy `tokens`, `token_logprobs`, …), joined. */
  logprobs: Map<string, unknown[]>
  /** Non-text delta fields the engine added, last value wins. */
  deltaExtra: Record<string, unknown>
  /** Choice fields the engine added (vLLM's `stop_reason`), last value wins. */
  extra: Record<string, unknown>
  finishReason: string | null
}

const nothing = (value: unknown): value is null | undefined => value === undefined || value === null

function keepLast(into: Record<string, unknown>, fields: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(fields)) if (!nothing(value)) into[key] = value
}

/** Empty fragments add nothing: a role chunk's `content: ""` does not make a tool call's content a string. */
function append(texts: Map<string, string>, key: string, value: string): void {
  if (value !== '') texts.set(key, (texts.get(key) ?? '') + value)
}

/**
 * Builds a non-streamed reply from the engine's stream: per choice (by index) the text fields
 * joined, tool calls with whole arguments, logprobs arrays joined and the finish reason; the
 * chunk-level fields (`system_fingerprint`, the engine's own) and usage as the engine sent them.
 * Delta fields it does not know are joined when they are text (deltas append) and otherwise keep
 * their last value.
 */
export class CompletionAssembler {
  readonly #choices = new Map<number, ChoiceParts>()
  readonly #extra: Record<string, unknown> = {}
  #usage: EngineUsage | null = null

  add(chunks: readonly EngineChunk[]): void {
    for (const { choices, usage, ...extra } of chunks) {
      if (usage) this.#usage = usage
      keepLast(this.#extra, extra)
      for (const choice of choices) this.#addChoice(choice)
    }
  }

  /** `usage` is the end event's, used when the engine sent none in its chunks. */
  chat(identity: ResponseIdentity, usage: Usage | null): ChatCompletion {
    const choices = this.#sorted().map(([index, parts]) => {
      const { content, refusal, ...texts } = Object.fromEntries(parts.texts)
      const toolCalls = [...parts.toolCalls].sort(([a], [b]) => a - b).map(([, call]) => toolCallOf(call))
      const message = {
        ...parts.deltaExtra,
        ...texts,
        role: 'assistant' as const,
        content: content ?? (toolCalls.length > 0 ? null : ''),
        refusal: refusal ?? null,
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
      }
      const logprobs: ChatLogprobs | null = parts.logprobs.size > 0 ? { content: null, refusal: null, ...Object.fromEntries(parts.logprobs) } : null
      return { ...parts.extra, index, message, logprobs, finish_reason: parts.finishReason ?? 'stop' }
    })
    const { id, created, model } = identity
    return { ...this.#extra, id, object: 'chat.completion', created, model, choices, usage: this.#usage ?? usage ?? ZERO_USAGE }
  }

  /** The legacy completions shape: `text` and the parallel logprobs arrays. */
  text(identity: ResponseIdentity, usage: Usage | null): TextCompletion {
    const choices = this.#sorted().map(([index, parts]) => {
      const logprobs: TextLogprobs | null =
        parts.logprobs.size > 0 ? { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [], ...Object.fromEntries(parts.logprobs) } : null
      return { ...parts.extra, index, text: parts.texts.get('text') ?? '', logprobs, finish_reason: parts.finishReason ?? 'stop' }
    })
    const { id, created, model } = identity
    return { ...this.#extra, id, object: 'text_completion', created, model, choices, usage: this.#usage ?? usage ?? ZERO_USAGE }
  }

  /** The choices by index; an engine that sent none still answers one, empty. */
  #sorted(): [number, ChoiceParts][] {
    if (this.#choices.size === 0) this.#parts(0)
    return [...this.#choices].sort(([a], [b]) => a - b)
  }

  #parts(index: number): ChoiceParts {
    let parts = this.#choices.get(index)
    if (!parts) {
      parts = { texts: new Map(), toolCalls: new Map(), logprobs: new Map(), deltaExtra: {}, extra: {}, finishReason: null }
      this.#choices.set(index, parts)
    }
    return parts
  }

  #addChoice({ index, delta, text, logprobs, finish_reason, ...extra }: EngineChoice): void {
    const parts = this.#parts(index)
    if (typeof text === 'string') append(parts.texts, 'text', text)
    if (delta) {
      const { role: _always_assistant, tool_calls, ...fields } = delta
      for (const [key, value] of Object.entries(fields)) {
        if (typeof value === 'string') append(parts.texts, key, value)
        else if (!nothing(value)) parts.deltaExtra[key] = value
      }
      for (const call of tool_calls ?? []) addToolCall(parts.toolCalls, call)
    }
    for (const [key, value] of Object.entries(logprobs ?? {})) {
      if (!Array.isArray(value)) continue
      const list = parts.logprobs.get(key) ?? []
      for (const entry of value) list.push(entry)
      parts.logprobs.set(key, list)
    }
    if (finish_reason) parts.finishReason = finish_reason
    keepLast(parts.extra, extra)
  }
}

function addToolCall(calls: Map<number, ToolCallParts>, { index, id, type, function: fn, ...extra }: ToolCallDelta): void {
  let call = calls.get(index)
  if (!call) {
    call = { id: null, type: null, name: null, arguments: '', extra: {} }
    calls.set(index, call)
  }
  call.id ??= id ?? null
  call.type ??= type ?? null
  call.name ??= fn?.name ?? null
  call.arguments += fn?.arguments ?? ''
  keepLast(call.extra, extra)
}

function toolCallOf(call: ToolCallParts): ToolCall {
  return { ...call.extra, id: call.id ?? '', type: call.type ?? 'function', function: { name: call.name ?? '', arguments: call.arguments } }
}
