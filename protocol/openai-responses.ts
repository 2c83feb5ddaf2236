import { z } from 'zod'
import { EngineChunk, EngineUsage } from './engine-chunk.ts'
import { FinishReason } from './openai.ts'

// Responses, as the control plane writes them and clients (and tests) read them. They are loose:
// whatever the engine sent beyond OpenAI's fields is relayed too.

const Identity = { id: z.string(), created: z.int(), model: z.string() }

/** A streamed chat chunk: the engine's own chunk with llorch's id, model and created. */
export const ChatCompletionChunk = EngineChunk.extend({ ...Identity, object: z.literal('chat.completion.chunk') })
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>

/** A streamed completions chunk, likewise. */
export const TextCompletionChunk = EngineChunk.extend({ ...Identity, object: z.literal('text_completion') })
export type TextCompletionChunk = z.infer<typeof TextCompletionChunk>

/** One entry of `logprobs.content`: a token, its logprob and the most likely alternatives. */
export const ChatLogprobEntry = z.looseObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.int()).nullish(),
  top_logprobs: z.array(z.looseObject({ token: z.string(), logprob: z.number(), bytes: z.array(z.int()).nullish() })),
})
export type ChatLogprobEntry = z.infer<typeof ChatLogprobEntry>

/** A tool call with its whole arguments, as a non-streamed reply carries it. */
export const ToolCall = z.looseObject({
  id: z.string(),
  type: z.string(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
})
export type ToolCall = z.infer<typeof ToolCall>

export const AssistantMessage = z.looseObject({
  role: z.literal('assistant'),
  /** Null when the reply is only tool calls. */
  content: z.string().nullable(),
  refusal: z.string().nullable(),
  tool_calls: z.array(ToolCall).optional(),
  reasoning_content: z.string().optional(),
  reasoning: z.string().optional(),
})
export type AssistantMessage = z.infer<typeof AssistantMessage>

/** Entries are relayed as the engine wrote them; `ChatLogprobEntry` reads one. */
export const ChatLogprobs = z.looseObject({ content: z.array(z.unknown()).nullable(), refusal: z.array(z.unknown()).nullable().optional() })
export type ChatLogprobs = z.infer<typeof ChatLogprobs>

export const ChatCompletion = z.looseObject({
  ...Identity,
  object: z.literal('chat.completion'),
  system_fingerprint: z.string().optional(),
  choices: z.array(z.looseObject({ index: z.int(), message: AssistantMessage, logprobs: ChatLogprobs.nullable(), finish_reason: FinishReason.nullable() })),
  usage: EngineUsage,
})
export type ChatCompletion = z.infer<typeof ChatCompletion>

/** The legacy completions logprobs: parallel arrays, one entry per token. */
export const TextLogprobs = z.looseObject({
  tokens: z.array(z.unknown()),
  token_logprobs: z.array(z.unknown()),
  top_logprobs: z.array(z.unknown()),
  text_offset: z.array(z.unknown()),
})
export type TextLogprobs = z.infer<typeof TextLogprobs>

export const TextCompletion = z.looseObject({
  ...Identity,
  object: z.literal('text_completion'),
  system_fingerprint: z.string().optional(),
  choices: z.array(z.looseObject({ index: z.int(), text: z.string(), logprobs: TextLogprobs.nullable(), finish_reason: FinishReason.nullable() })),
  usage: EngineUsage,
})
export type TextCompletion = z.infer<typeof TextCompletion>

export const ModelList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() })),
})
export type ModelList = z.infer<typeof ModelList>
