import type { ChatCompletion, ChatCompletionChunk, GenerationEndpoint, TextCompletion, TextCompletionChunk, Usage } from '../../protocol/index.ts'

/** What every chunk of one response repeats. */
export interface ResponseIdentity {
  id: string
  created: number
  model: string
  endpoint: GenerationEndpoint
}

type Chunk = ChatCompletionChunk | TextCompletionChunk

export function roleChunk(identity: ResponseIdentity): ChatCompletionChunk {
  return { id: identity.id, object: 'chat.completion.chunk', created: identity.created, model: identity.model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }
}

export function textChunk(identity: ResponseIdentity, text: string, finishReason: string | null = null): Chunk {
  const { id, created, model } = identity
  if (identity.endpoint === 'chat') {
    return { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: text === '' ? {} : { content: text }, finish_reason: finishReason }] }
  }
  return { id, object: 'text_completion', created, model, choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }] }
}

/** OpenAI's usage chunk: no choices, only usage, after the finish chunk. */
export function usageChunk(identity: ResponseIdentity, usage: Usage): Chunk {
  const { id, created, model } = identity
  return identity.endpoint === 'chat'
    ? { id, object: 'chat.completion.chunk', created, model, choices: [], usage }
    : { id, object: 'text_completion', created, model, choices: [], usage }
}

export function completionObject(identity: ResponseIdentity, text: string, finishReason: string | null, usage: Usage): ChatCompletion | TextCompletion {
  const { id, created, model } = identity
  if (identity.endpoint === 'chat') {
    return { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason }], usage }
  }
  return { id, object: 'text_completion', created, model, choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }], usage }
}
