import { z } from 'zod'

/** Scheduling class of a task: interactive tasks are placed before batch ones. */
export const Priority = z.enum(['interactive', 'batch'])
export type Priority = z.infer<typeof Priority>

const Stop = z.union([z.string(), z.array(z.string()).max(16)])

const ContentPart = z.looseObject({ type: z.string() })

export const ChatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
  name: z.string().optional(),
})
export type ChatMessage = z.infer<typeof ChatMessage>

/**
 * Fields every generation request shares. Unknown fields are kept and passed through to the
 * engine (sampling options differ between engines); known ones are checked here.
 */
const GenerationFields = {
  model: z.string().min(1).max(256),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: Stop.nullish(),
  seed: z.int().nullish(),
  n: z.literal(1).nullish(),
  priority: Priority.optional(),
}

export const ChatCompletionRequest = z.looseObject({
  ...GenerationFields,
  messages: z.array(ChatMessage).min(1),
  max_completion_tokens: z.int().positive().nullish(),
})
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>

export const CompletionRequest = z.looseObject({
  ...GenerationFields,
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(1)]),
})
export type CompletionRequest = z.infer<typeof CompletionRequest>

/** What reaches an engine: the client's body without llorch's own fields. */
export const EngineChatRequest = ChatCompletionRequest.omit({ priority: true })
export type EngineChatRequest = z.infer<typeof EngineChatRequest>
export const EngineCompletionRequest = CompletionRequest.omit({ priority: true })
export type EngineCompletionRequest = z.infer<typeof EngineCompletionRequest>

/** Which OpenAI route a task came in on; the agent calls the same route on its engine. */
export const GenerationEndpoint = z.enum(['chat', 'completions'])
export type GenerationEndpoint = z.infer<typeof GenerationEndpoint>

export const ENGINE_PATHS = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
} as const satisfies Record<GenerationEndpoint, string>

export const Usage = z.object({
  prompt_tokens: z.int().nonnegative(),
  completion_tokens: z.int().nonnegative(),
  total_tokens: z.int().nonnegative(),
})
export type Usage = z.infer<typeof Usage>

/** Engines may name reasons OpenAI does not, so any string is carried through. */
export const FinishReason = z.string().min(1).max(64)
export type FinishReason = z.infer<typeof FinishReason>

// Responses, as the control plane writes them and clients (and tests) read them.

export const ChatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.int(),
      delta: z.object({ role: z.literal('assistant').optional(), content: z.string().optional() }),
      finish_reason: FinishReason.nullable(),
    }),
  ),
  usage: Usage.nullable().optional(),
})
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>

export const ChatCompletion = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.int(),
      message: z.object({ role: z.literal('assistant'), content: z.string() }),
      finish_reason: FinishReason.nullable(),
    }),
  ),
  usage: Usage,
})
export type ChatCompletion = z.infer<typeof ChatCompletion>

export const TextCompletionChunk = z.object({
  id: z.string(),
  object: z.literal('text_completion'),
  created: z.int(),
  model: z.string(),
  choices: z.array(z.object({ index: z.int(), text: z.string(), logprobs: z.null(), finish_reason: FinishReason.nullable() })),
  usage: Usage.nullable().optional(),
})
export type TextCompletionChunk = z.infer<typeof TextCompletionChunk>

/** A non-streamed completion has the same shape as one chunk, with usage always set. */
export const TextCompletion = TextCompletionChunk.extend({ usage: Usage })
export type TextCompletion = z.infer<typeof TextCompletion>

export const ModelList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() })),
})
export type ModelList = z.infer<typeof ModelList>
