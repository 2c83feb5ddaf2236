import { z } from 'zod'
import { Priority } from './openai.ts'

/** Most inputs one embeddings request may carry, as OpenAI allows. */
export const MAX_EMBEDDING_INPUTS = 2_048
/** Longest token array one input may be. */
export const MAX_EMBEDDING_INPUT_TOKENS = 65_536
/** Widest vector an engine may return (and a client may ask for with `dimensions`). */
export const MAX_EMBEDDING_DIMENSIONS = 65_536
/** A base64 vector of that many float32 values. */
export const MAX_EMBEDDING_BASE64_CHARS = Math.ceil((MAX_EMBEDDING_DIMENSIONS * 4) / 3) + 4

const TokenIds = z.array(z.int().nonnegative()).min(1).max(MAX_EMBEDDING_INPUT_TOKENS)

/** `POST /v1/embeddings`. Unknown fields pass through to the engine, as on the generation routes. */
export const EmbeddingRequest = z.looseObject({
  model: z.string().min(1).max(256),
  input: z.union([
    z.string().min(1),
    z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS),
    TokenIds,
    z.array(TokenIds).min(1).max(MAX_EMBEDDING_INPUTS),
  ]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.int().positive().max(MAX_EMBEDDING_DIMENSIONS).nullish(),
  user: z.string().max(256).nullish(),
  priority: Priority.optional(),
})
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>

export const EngineEmbeddingRequest = EmbeddingRequest.omit({ priority: true })
export type EngineEmbeddingRequest = z.infer<typeof EngineEmbeddingRequest>

/** One vector: numbers, or base64 float32 when `encoding_format: "base64"` asked for it. */
export const EmbeddingItem = z.looseObject({
  index: z.int().nonnegative(),
  embedding: z.union([z.array(z.number()).max(MAX_EMBEDDING_DIMENSIONS), z.string().max(MAX_EMBEDDING_BASE64_CHARS)]),
})
export type EmbeddingItem = z.infer<typeof EmbeddingItem>

export const EmbeddingUsage = z.looseObject({ prompt_tokens: z.int().nonnegative(), total_tokens: z.int().nonnegative() })
export type EmbeddingUsage = z.infer<typeof EmbeddingUsage>

/** An engine's reply to `/v1/embeddings` without its vectors: usage, model and its own fields. */
export const EmbeddingReplyFields = z.looseObject({ usage: EmbeddingUsage.nullish() })
export type EmbeddingReplyFields = z.infer<typeof EmbeddingReplyFields>

/** An engine's whole reply, as the agent reads it. */
export const EngineEmbeddingReply = EmbeddingReplyFields.extend({ data: z.array(EmbeddingItem).max(MAX_EMBEDDING_INPUTS) })
export type EngineEmbeddingReply = z.infer<typeof EngineEmbeddingReply>

/** What `POST /v1/embeddings` answers: the engine's reply with llorch's model name and usage. */
export const EmbeddingList = z.looseObject({
  object: z.literal('list'),
  data: z.array(EmbeddingItem),
  model: z.string(),
  usage: EmbeddingUsage,
})
export type EmbeddingList = z.infer<typeof EmbeddingList>
