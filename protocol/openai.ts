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
