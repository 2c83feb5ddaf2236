import { z } from 'zod'
import { EngineKind } from './engine-kind.ts'
import { ErrorCode } from './errors.ts'
import { EmbeddingItem, EmbeddingReplyFields, EngineEmbeddingRequest, MAX_EMBEDDING_INPUTS } from './embeddings.ts'
import { EngineChunk, MAX_CHUNKS_PER_BATCH } from './engine-chunk.ts'
import { EngineChatRequest, EngineCompletionRequest, FinishReason, TaskEndpoint, Usage } from './openai.ts'
import { AgentReplicaState } from './replica-state.ts'

/**
 * Major version of the agent wire protocol. The control plane refuses a `hello` with another
 * major version; additive changes keep the number. 2: `deltas` (the engine's own chunks)
 * replaced the text-only `tokens` event, and tasks may be embeddings.
 */
export const PROTOCOL_VERSION = 2

/** A frame larger than this is refused before parsing (Workers allow 32 MiB per message). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Longest error message a frame carries; longer ones are clipped by the sender. */
export const MAX_ERROR_MESSAGE_CHARS = 8_192
/** Longest `reason` a replica report carries: the failure and the tail of its engine's log. */
export const MAX_REPLICA_REASON_CHARS = 4_096

/** Close codes the control plane uses on the agent socket (4000–4999 are application codes). */
export const CLOSE_CODES = {
  protocolMismatch: 4400,
  unauthorized: 4401,
  revoked: 4403,
  replaced: 4409,
  helloTimeout: 4408,
} as const

/** The pool id is the public model name clients ask for. */
export const PoolId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:\/-]*$/, 'letters, digits and . _ : / - only, starting with a letter or digit')
export type PoolId = z.infer<typeof PoolId>

export const TaskId = z.string().min(1).max(128)
export const CommandId = z.string().min(1).max(128)

export const GpuInfo = z.object({
  index: z.int().nonnegative(),
  name: z.string().max(256),
  memory_total_mib: z.number().nonnegative(),
  memory_used_mib: z.number().nonnegative(),
  /** `utilization.gpu`: percent of the last sample period a kernel ran; null when the GPU does not say. Older agents leave it out. */
  utilization_percent: z.number().min(0).max(100).nullish(),
})
export type GpuInfo = z.infer<typeof GpuInfo>

/** How far the agent is in fetching a replica's files (model, engine) before it can start it. */
export const DownloadProgress = z.object({
  /** The file being fetched now. */
  file: z.string().max(512),
  /** Over every file the replica still needed when the download began. */
  bytes_done: z.number().nonnegative(),
  bytes_total: z.number().nonnegative().nullable(),
  bytes_per_s: z.number().nonnegative(),
  /** At the current rate; null while there is no rate or no total. */
  eta_ms: z.number().nonnegative().nullable(),
})
export type DownloadProgress = z.infer<typeof DownloadProgress>

/** One replica as its agent sees it. A node hosts at most one replica per pool. */
export const ReplicaReport = z.object({
  pool: PoolId,
  engine: EngineKind,
  state: AgentReplicaState,
  slots: z.int().positive().max(4096),
  slots_busy: z.int().nonnegative(),
  engine_version: z.string().max(256).nullish(),
  reason: z.string().max(MAX_REPLICA_REASON_CHARS).nullish(),
  /** Failed and not restarting until a reload: repeated crashes opened the circuit breaker. */
  breaker_open: z.boolean().default(false),
  /** While its files are fetched: `downloading`, or a reload fetching a new revision beside a ready engine. Older agents leave it out. */
  download: DownloadProgress.nullish(),
})
export type ReplicaReport = z.infer<typeof ReplicaReport>

// Agent → control plane

export const Hello = z.object({
  type: z.literal('hello'),
  protocol: z.int().nonnegative(),
  agent_version: z.string().max(64),
  hostname: z.string().max(256),
  gpus: z.array(GpuInfo).max(64),
  replicas: z.array(ReplicaReport).max(256),
  /** Tasks still running on this agent after a reconnect. */
  running_tasks: z.array(TaskId).max(65536),
})

export const Heartbeat = z.object({
  type: z.literal('heartbeat'),
  replicas: z.array(ReplicaReport).max(256),
  gpus: z.array(GpuInfo).max(64),
  running_tasks: z.array(TaskId).max(65536),
})

export const ReplicaStateChange = z.object({
  type: z.literal('replica_state'),
  replica: ReplicaReport,
  previous: AgentReplicaState.nullish(),
})

export const TaskStarted = z.object({ kind: z.literal('started') })
/** Batches are numbered from 0 per task, so gaps and repeats show. */
const Seq = z.int().nonnegative()
/**
 * The engine's stream chunks, in its order, batched by the agent (consecutive chunks merged where
 * that loses nothing). Every output event of a generation task is one of these.
 */
export const TaskDeltas = z.object({ kind: z.literal('deltas'), seq: Seq, chunks: z.array(EngineChunk).min(1).max(MAX_CHUNKS_PER_BATCH) })
/** An embeddings reply, its vectors split over as many events as the frame size needs. */
export const TaskEmbeddings = z.object({
  kind: z.literal('embeddings'),
  seq: Seq,
  data: z.array(EmbeddingItem).max(MAX_EMBEDDING_INPUTS),
  /** The rest of the engine's reply, on the first batch only. */
  reply: EmbeddingReplyFields.optional(),
})
/** `finish_reason` is the last one the engine gave (of any choice); usage as the engine counted it. */
export const TaskEnd = z.object({ kind: z.literal('end'), finish_reason: FinishReason.nullable(), usage: Usage.nullable() })
export const TaskFailed = z.object({
  kind: z.literal('error'),
  code: ErrorCode,
  message: z.string().max(MAX_ERROR_MESSAGE_CHARS),
  retriable: z.boolean(),
})
export const TaskEvent = z.discriminatedUnion('kind', [TaskStarted, TaskDeltas, TaskEmbeddings, TaskEnd, TaskFailed])
export type TaskEvent = z.infer<typeof TaskEvent>

export const TaskEventFrame = z.object({ type: z.literal('task_event'), task_id: TaskId, event: TaskEvent })

export const Ack = z.object({
  type: z.literal('ack'),
  command_id: CommandId,
  ok: z.boolean(),
  error: z.object({ code: ErrorCode, message: z.string().max(MAX_ERROR_MESSAGE_CHARS) }).nullish(),
})

/** Either side answers a frame it cannot use with this, and keeps the connection. */
export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: ErrorCode,
  message: z.string().max(MAX_ERROR_MESSAGE_CHARS),
})

export const AgentFrame = z.discriminatedUnion('type', [Hello, Heartbeat, ReplicaStateChange, TaskEventFrame, Ack, ErrorFrame])
export type AgentFrame = z.infer<typeof AgentFrame>

// Control plane → agent

export const Welcome = z.object({
  type: z.literal('welcome'),
  protocol: z.int().nonnegative(),
  node_id: z.string().min(1),
  heartbeat_interval_ms: z.int().positive(),
})

export const Preload = z.object({ type: z.literal('preload'), command_id: CommandId, pool: PoolId })
export const Drain = z.object({
  type: z.literal('drain'),
  command_id: CommandId,
  pool: PoolId,
  /** How long in-flight tasks may run before the engine is stopped anyway. */
  deadline_ms: z.int().nonnegative(),
})
export const Reload = z.object({ type: z.literal('reload'), command_id: CommandId, pool: PoolId })

const DispatchFields = {
  type: z.literal('dispatch'),
  task_id: TaskId,
  pool: PoolId,
  deadline_ms: z.int().positive(),
}

export const Dispatch = z.discriminatedUnion('endpoint', [
  z.object({ ...DispatchFields, endpoint: z.literal(TaskEndpoint.enum.chat), body: EngineChatRequest }),
  z.object({ ...DispatchFields, endpoint: z.literal(TaskEndpoint.enum.completions), body: EngineCompletionRequest }),
  z.object({ ...DispatchFields, endpoint: z.literal(TaskEndpoint.enum.embeddings), body: EngineEmbeddingRequest }),
])
export type Dispatch = z.infer<typeof Dispatch>

/** What a dispatch asks of the engine: the route and its body, as one discriminated pair. */
export type EngineCall = { [E in Dispatch['endpoint']]: Pick<Extract<Dispatch, { endpoint: E }>, 'endpoint' | 'body'> }[Dispatch['endpoint']]

/** Which deadline of a task its engine missed: the first token, or the next one once tokens flowed. */
export const MissedDeadline = z.enum(['first_token', 'idle'])
export type MissedDeadline = z.infer<typeof MissedDeadline>

/** `deadline`: the task is stopped because its engine missed that deadline (the agent counts such misses to find a hung engine). */
export const Cancel = z.object({ type: z.literal('cancel'), task_id: TaskId, reason: z.string().max(256).nullish(), deadline: MissedDeadline.nullish() })

export const ControlFrame = z.discriminatedUnion('type', [Welcome, Preload, Drain, Reload, Dispatch, Cancel, ErrorFrame])
export type ControlFrame = z.infer<typeof ControlFrame>

export type Hello = z.infer<typeof Hello>
export type Heartbeat = z.infer<typeof Heartbeat>
export type ReplicaStateChange = z.infer<typeof ReplicaStateChange>
export type TaskEventFrame = z.infer<typeof TaskEventFrame>
export type Ack = z.infer<typeof Ack>
export type ErrorFrame = z.infer<typeof ErrorFrame>
export type Welcome = z.infer<typeof Welcome>
export type Preload = z.infer<typeof Preload>
export type Drain = z.infer<typeof Drain>
export type Reload = z.infer<typeof Reload>
export type Cancel = z.infer<typeof Cancel>
