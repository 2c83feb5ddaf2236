import { z } from 'zod'
import { FinishReason, MAX_CHOICES, Usage } from './openai.ts'
/** Most tool-call pieces one delta carries. */
export const MAX_TOOL_CALLS = 128
/** Most entries in one of a chunk's logprobs arrays (one per token, after coalescing). */
export const MAX_LOGPROB_ENTRIES = 65_536
/** Most engine chunks one `deltas` event carries. */
export const MAX_CHUNKS_PER_BATCH = 1_024
/** Longest short identifier (tool-call id, name, role, fingerprint) a chunk carries. */
export const MAX_CHUNK_LABEL_CHARS = 1_024

// Strings that are text (content, arguments) are bounded by the frame size (MAX_FRAME_BYTES).
const Fragment = z.string().nullish()
const Label = z.string().max(MAX_CHUNK_LABEL_CHARS).nullish()
const Entries = z.array(z.unknown()).max(MAX_LOGPROB_ENTRIES).nullish()

/** A piece of a streamed tool call: the first names it, later ones carry argument fragments. */
export const ToolCallDelta = z.looseObject({
  index: z
    .int()
    .nonnegative()
    .max(MAX_TOOL_CALLS - 1),
  id: Label,
  type: Label,
  function: z.looseObject({ name: Label, arguments: Fragment }).nullish(),
})
export type ToolCallDelta = z.infer<typeof ToolCallDelta>

/**
 * What a chat choice adds in one chunk. Unknown fields pass: engines add their own (vLLM
 * renamed `reasoning_content` to `reasoning`), and the Worker relays them.
 */
export const ChoiceDelta = z.looseObject({
  role: Label,
  content: Fragment,
  reasoning_content: Fragment,
  reasoning: Fragment,
  refusal: Fragment,
  tool_calls: z.array(ToolCallDelta).max(MAX_TOOL_CALLS).nullish(),
})
export type ChoiceDelta = z.infer<typeof ChoiceDelta>

/**
 * Chat logprobs (`content`, `refusal`: one entry per token) or the legacy completions shape
 * (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`: parallel arrays). Entries are
 * relayed as the engine wrote them.
 */
export const ChunkLogprobs = z.looseObject({
  content: Entries,
  refusal: Entries,
  tokens: Entries,
  token_logprobs: Entries,
  top_logprobs: Entries,
  text_offset: Entries,
})
export type ChunkLogprobs = z.infer<typeof ChunkLogprobs>

/** One choice of a chunk: `delta` on chat routes, `text` on completions. */
export const EngineChoice = z.looseObject({
  index: z
    .int()
    .nonnegative()
    .max(MAX_CHOICES - 1),
  delta: ChoiceDelta.nullish(),
  text: Fragment,
  logprobs: ChunkLogprobs.nullish(),
  finish_reason: FinishReason.nullish(),
})
export type EngineChoice = z.infer<typeof EngineChoice>

/** Usage as an engine reports it, details (cached or reasoning tokens) included. */
export const EngineUsage = Usage.loose()
export type EngineUsage = z.infer<typeof EngineUsage>

/**
 * One chunk of an engine's OpenAI stream as the agent relays it: everything but `id`, `object`,
 * `created` and `model`, which the Worker writes itself. Consecutive chunks may arrive merged
 * where merging loses nothing (see the agent's relay).
 */
export const EngineChunk = z.looseObject({
  choices: z.array(EngineChoice).max(MAX_CHOICES),
  usage: EngineUsage.nullish(),
  system_fingerprint: Label,
})
export type EngineChunk = z.infer<typeof EngineChunk>
