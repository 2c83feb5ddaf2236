import { z } from 'zod'

/** Most choices one request may ask for (`n`), as OpenAI allows. */
export const MAX_CHOICES = 128

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
 * The most tokens a request may ask for. No engine llorch runs has a context this long (the
 * longest are about 10M tokens), so a larger `max_tokens` is refused before it is queued.
 */
export const MAX_TOKENS_LIMIT = 16_777_216
const MaxTokens = z.int().positive().max(MAX_TOKENS_LIMIT).nullish()

/**
 * Fields every generation request shares. Unknown fields are kept and passed through to the
 * engine (sampling options differ between engines); known ones are checked here.
 */
const GenerationFields = {
  model: z.string().min(1).max(256),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: MaxTokens,
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: Stop.nullish(),
  seed: z.int().nullish(),
  /** Choices to generate; engines that support it stream them interleaved, told apart by index. */
  n: z.int().min(1).max(MAX_CHOICES).nullish(),
  priority: Priority.optional(),
}

export const ChatCompletionRequest = z.looseObject({
  ...GenerationFields,
  messages: z.array(ChatMessage).min(1),
  max_completion_tokens: MaxTokens,
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

/** Which OpenAI generation route a task came in on; the agent calls the same route on its engine. */
export const GenerationEndpoint = z.enum(['chat', 'completions'])
export type GenerationEndpoint = z.infer<typeof GenerationEndpoint>

/** Every route a task can call on an engine: the generation routes and embeddings. */
export const TaskEndpoint = z.enum([...GenerationEndpoint.options, 'embeddings'])
export type TaskEndpoint = z.infer<typeof TaskEndpoint>

export const ENGINE_PATHS = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  embeddings: '/v1/embeddings',
} as const satisfies Record<TaskEndpoint, string>

export const Usage = z.object({
  prompt_tokens: z.int().nonnegative(),
  completion_tokens: z.int().nonnegative(),
  total_tokens: z.int().nonnegative(),
})
export type Usage = z.infer<typeof Usage>

/** Engines may name reasons OpenAI does not, so any string is carried through. */
export const FinishReason = z.string().min(1).max(64)
export type FinishReason = z.infer<typeof FinishReason>
