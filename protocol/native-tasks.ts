import { z } from 'zod'
import { DownloadProgress } from './agent-frames.ts'
import { EngineChoice, EngineUsage } from './engine-chunk.ts'
import { ErrorCode } from './errors.ts'
import { ChatCompletionRequest, CompletionRequest, FinishReason, GenerationEndpoint, Priority, Usage } from './openai.ts'

/** A native task with nobody reading its events this long after it was created expires and gives its place back. */
export const TASK_ATTACH_TIMEOUT_MS = 30_000
/** Longest attach window a client may ask for. */
export const MAX_TASK_ATTACH_MS = 5 * 60_000
/** A finished task's events (and its state) are kept this long for a reader to resume; then the task is gone. */
export const TASK_EVENTS_KEPT_MS = 10 * 60_000
/** Most events kept per task for resuming; older ones are dropped first. */
export const MAX_KEPT_TASK_EVENTS = 20_000

/**
 * `POST /v2/tasks`: a chat or completion request as `/v1` takes it, plus `priority`. The
 * `endpoint` field names the route; without it the shape decides (`messages` → chat, `prompt` →
 * completions). Tasks always stream: their output is read from `GET /v2/tasks/{id}/events`.
 * `endpoint`, `priority` and `attach_within_ms` are llorch's and never reach the engine.
 */
const TaskFields = {
  /** How long the task waits for a reader before it expires; `TASK_ATTACH_TIMEOUT_MS` when unset. */
  attach_within_ms: z.int().min(100).max(MAX_TASK_ATTACH_MS).optional(),
}
export const CreateChatTask = ChatCompletionRequest.extend({ ...TaskFields, endpoint: z.literal(GenerationEndpoint.enum.chat).optional() })
export const CreateCompletionTask = CompletionRequest.extend({ ...TaskFields, endpoint: z.literal(GenerationEndpoint.enum.completions).optional() })
export type CreateChatTask = z.infer<typeof CreateChatTask>
export type CreateCompletionTask = z.infer<typeof CreateCompletionTask>

/** Which generation route a task body is for; null when neither the field nor the shape says. */
export function taskEndpointOf(body: unknown): GenerationEndpoint | null {
  if (typeof body !== 'object' || body === null) return null
  if ('endpoint' in body) {
    const named = GenerationEndpoint.safeParse(body.endpoint)
    return named.success ? named.data : null
  }
  if ('messages' in body) return 'chat'
  if ('prompt' in body) return 'completions'
  return null
}

export const CreateTaskResponse = z.object({
  task_id: z.string(),
  /** Tasks ahead of this one in its pool's queue. */
  queue_position: z.int().nonnegative(),
  /** Expected wait until it starts, from the pool's measured task times and the slots ahead. */
  predicted_start_ms: z.int().nonnegative(),
  events_url: z.string(),
  /** Read the events by then, or the task expires. */
  attach_by: z.iso.datetime(),
})
export type CreateTaskResponse = z.infer<typeof CreateTaskResponse>

/** Where a native task is; `expired` means nobody attached in time. */
export const NativeTaskState = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled', 'expired'])
export type NativeTaskState = z.infer<typeof NativeTaskState>

/** Allowed moves of a native task; a final state has none. */
export const NATIVE_TASK_TRANSITIONS = {
  queued: ['running', 'failed', 'cancelled', 'expired'],
  /** Back to queued when its node failed before the first token and it waits to be placed again. */
  running: ['queued', 'completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
  expired: [],
} as const satisfies Record<NativeTaskState, readonly NativeTaskState[]>

const Time = z.iso.datetime().nullable()

/** `GET /v2/tasks/{id}` */
export const TaskView = z.object({
  task_id: z.string(),
  model: z.string(),
  endpoint: GenerationEndpoint,
  /** As the client asked; null when it left it to the pool's default. */
  priority: Priority.nullable(),
  state: NativeTaskState,
  /** Null once it has left the queue. */
  queue_position: z.int().nonnegative().nullable(),
  predicted_start_ms: z.int().nonnegative().nullable(),
  /** Whether a reader is attached to its events now. */
  attached: z.boolean(),
  created_at: z.iso.datetime(),
  attach_by: z.iso.datetime(),
  started_at: Time,
  first_token_at: Time,
  ended_at: Time,
  queue_wait_ms: z.int().nonnegative().nullable(),
  ttft_ms: z.int().nonnegative().nullable(),
  usage: Usage.nullable(),
  error: z.object({ code: ErrorCode, message: z.string() }).nullable(),
  /** Id of the last event so far; resuming after it misses nothing. */
  last_event_id: z.int().nonnegative(),
})
export type TaskView = z.infer<typeof TaskView>

/** `POST /v2/tasks/{id}/cancel` */
export const CancelTaskResponse = z.object({ task_id: z.string(), state: NativeTaskState })
export type CancelTaskResponse = z.infer<typeof CancelTaskResponse>

/** Why a task waits for an engine that is starting; `downloading`: its agent fetches the model first. */
export const LoadingReason = z.enum(['on_demand_start', 'replica_starting', 'replica_restarting', 'downloading'])
export type LoadingReason = z.infer<typeof LoadingReason>

/**
 * The events of `GET /v2/tasks/{id}/events`, one SSE `event:` name each, with a JSON `data:`
 * and an increasing `id:`. `token` carries the engine's choices as the `/v1` stream would
 * (text or `delta` with content, tool calls, reasoning; logprobs; finish reasons).
 */
export const NativeTaskEvent = z.discriminatedUnion('event', [
  z.object({ event: z.literal('queued'), data: z.object({ position: z.int().nonnegative(), predicted_start_ms: z.int().nonnegative() }) }),
  z.object({
    event: z.literal('loading'),
    data: z.object({ reason: LoadingReason, node_id: z.string(), message: z.string(), download: DownloadProgress.optional() }),
  }),
  z.object({ event: z.literal('started'), data: z.object({ node_id: z.string(), attempt: z.int().positive(), queue_wait_ms: z.int().nonnegative() }) }),
  z.object({ event: z.literal('token'), data: z.object({ choices: z.array(EngineChoice) }) }),
  z.object({
    event: z.literal('metrics'),
    data: z.object({
      queue_wait_ms: z.int().nonnegative().nullable(),
      ttft_ms: z.int().nonnegative().nullable(),
      tokens_per_second: z.number().nonnegative().nullable(),
      completion_tokens: z.int().nonnegative().nullable(),
    }),
  }),
  z.object({ event: z.literal('end'), data: z.object({ finish_reason: FinishReason.nullable(), usage: EngineUsage.nullable() }) }),
  z.object({ event: z.literal('error'), data: z.object({ code: ErrorCode, message: z.string(), retriable: z.boolean() }) }),
])
export type NativeTaskEvent = z.infer<typeof NativeTaskEvent>
