import { z } from 'zod'
import { DownloadProgress, GpuInfo, PoolId } from './agent-frames.ts'
import { EngineKind } from './engine-kind.ts'
import { ErrorCode } from './errors.ts'
import { KeyLimits } from './key-limits.ts'
import { Priority } from './openai.ts'
import { ReplicaState } from './replica-state.ts'

const Name = z.string().trim().min(1).max(128)
const Labels = z.record(z.string().min(1).max(64), z.string().max(256))
const Timestamp = z.iso.datetime().nullable()

export const NodeStatus = z.enum(['new', 'online', 'offline', 'revoked'])
export type NodeStatus = z.infer<typeof NodeStatus>
export const ApiKeyScope = z.enum(['inference', 'admin'])
export type ApiKeyScope = z.infer<typeof ApiKeyScope>
/** `eager` pools start with their agent; `on-demand` ones on the first request. */
export const PreloadMode = z.enum(['eager', 'on-demand'])
export type PreloadMode = z.infer<typeof PreloadMode>

/** A replica as the registry shows it. */
export const ReplicaView = z.object({
  pool: z.string(),
  node_id: z.string(),
  state: ReplicaState,
  engine: EngineKind,
  engine_version: z.string().nullable(),
  slots: z.int(),
  slots_busy: z.int().nullable(),
  reason: z.string().nullable(),
  /** While the agent fetches the replica's model or engine (state `downloading`, or a reload beside a ready engine). */
  download: DownloadProgress.nullable(),
  updated_at: Timestamp,
})
export type ReplicaView = z.infer<typeof ReplicaView>

export const CreateNodeRequest = z.strictObject({ name: Name, labels: Labels.default({}) })
export type CreateNodeRequest = z.infer<typeof CreateNodeRequest>

export const NodeView = z.object({
  id: z.string(),
  name: z.string(),
  labels: Labels,
  status: NodeStatus,
  hostname: z.string().nullable(),
  agent_version: z.string().nullable(),
  gpus: z.array(GpuInfo),
  last_seen_at: Timestamp,
  created_at: Timestamp,
  /** Set while the node is cordoned for maintenance (`POST /v2/nodes/{id}/drain`): it takes no new task. */
  cordoned_at: Timestamp,
  replicas: z.array(ReplicaView),
})
export type NodeView = z.infer<typeof NodeView>

/** The node token appears here once and is never retrievable again. */
export const CreateNodeResponse = NodeView.extend({ token: z.string() })

/** A task whose engine sends no first token this long after dispatch fails with `deadline_exceeded`. */
export const DEFAULT_FIRST_TOKEN_TIMEOUT_MS = 60_000
/** A running task whose engine then falls silent this long fails the same way. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000
/** A task may wait this long in its pool's queue for a slot, then fails with `queue_timeout`. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 120_000
/** A dispatched task may run this long on its engine; then the pool takes its slot back. */
export const DEFAULT_RUN_TIMEOUT_MS = 10 * 60_000
/** More stopped replicas are started when the queue's predicted wait exceeds this. */
export const DEFAULT_SCALE_OUT_WAIT_MS = 10_000
const TimeoutMs = z.int().min(100).max(3_600_000)
/** A batch task that waited this long is served before interactive ones, so it never starves. */
export const DEFAULT_BATCH_AGING_MS = 30_000
/** Up to a day: a vLLM load can take minutes, and a batch task may run long. */
const LongTimeoutMs = z.int().min(100).max(86_400_000)

/** The policy's fields, each validated on its own (a PATCH sends any of them). */
const PolicyFields = {
  queue_capacity: z.int().min(0).max(100_000),
  preload_mode: PreloadMode,
  /** A ready replica with no task this long is drained; null never drains it. */
  idle_drain_ms: LongTimeoutMs.nullable(),
  default_priority: Priority,
  first_token_timeout_ms: TimeoutMs,
  idle_timeout_ms: TimeoutMs,
  /** A batch task waiting this long goes before interactive tasks. */
  batch_aging_ms: z.int().min(0).max(86_400_000),
  /** The share of the pool's ready slots batch-class tasks of every batch and key may hold at once (one at least); 1: every idle slot. */
  batch_slot_share: z.number().gt(0).max(1),
  /** Limits for keys that set none of their own, counted per key across pools. */
  key_limits: KeyLimits,
  queue_timeout_ms: LongTimeoutMs,
  run_timeout_ms: LongTimeoutMs,
  scale_out_wait_ms: LongTimeoutMs,
}

/**
 * A pool's policy with every field's default: the one place the defaults live. The registry's
 * column defaults are these (db/schema.ts), a missing field reads as its default (a policy stored
 * before the field existed), and `DEFAULT_POOL_POLICY` is the policy of a new pool.
 */
export const PoolPolicy = z.object({
  queue_capacity: PolicyFields.queue_capacity.default(64),
  preload_mode: PolicyFields.preload_mode.default('eager'),
  idle_drain_ms: PolicyFields.idle_drain_ms.default(null),
  default_priority: PolicyFields.default_priority.default('interactive'),
  first_token_timeout_ms: PolicyFields.first_token_timeout_ms.default(DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
  idle_timeout_ms: PolicyFields.idle_timeout_ms.default(DEFAULT_IDLE_TIMEOUT_MS),
  batch_aging_ms: PolicyFields.batch_aging_ms.default(DEFAULT_BATCH_AGING_MS),
  batch_slot_share: PolicyFields.batch_slot_share.default(1),
  key_limits: PolicyFields.key_limits.default({}),
  queue_timeout_ms: PolicyFields.queue_timeout_ms.default(DEFAULT_QUEUE_TIMEOUT_MS),
  run_timeout_ms: PolicyFields.run_timeout_ms.default(DEFAULT_RUN_TIMEOUT_MS),
  scale_out_wait_ms: PolicyFields.scale_out_wait_ms.default(DEFAULT_SCALE_OUT_WAIT_MS),
})
export type PoolPolicy = z.infer<typeof PoolPolicy>

/** A new pool's policy. */
export const DEFAULT_POOL_POLICY: PoolPolicy = PoolPolicy.parse({})
export type PoolPolicyInput = z.input<typeof PoolPolicy>

/** Every field optional, each validated; an unknown field is refused by name. */
export const PatchPoolRequest = z.strictObject(PolicyFields).partial()
export type PatchPoolRequest = z.infer<typeof PatchPoolRequest>

export const PoolView = z.object({
  id: PoolId,
  engine: EngineKind,
  policy: PoolPolicy,
  state: z.enum(['ready', 'starting', 'unavailable']),
  queue_depth: z.int().nullable(),
  slots_total: z.int(),
  slots_busy: z.int().nullable(),
  /** Drained for maintenance: nothing starts until `POST /v2/pools/{id}/preload`. Null when the pool's object did not answer. */
  maintenance_drained: z.boolean().nullable(),
  /** A reload going one replica at a time: the order, the node at it now and its step. */
  rolling_reload: z.object({ order: z.array(z.string()), node_id: z.string(), phase: z.enum(['stopping', 'starting']) }).nullable(),
  replicas: z.array(ReplicaView),
})
export type PoolView = z.infer<typeof PoolView>

export const PoolCommand = z.enum(['preload', 'drain', 'reload'])
export type PoolCommand = z.infer<typeof PoolCommand>

export const PoolCommandRequest = z.strictObject({
  /** Drain only: how long in-flight tasks may finish before engines are stopped. */
  deadline_ms: z.int().min(0).max(3_600_000).optional(),
})

/** Why a node did not carry out a command. */
export const CommandError = z.object({ code: ErrorCode, message: z.string() })
export type CommandError = z.infer<typeof CommandError>

export const PoolCommandResult = z.object({
  pool: z.string(),
  command: PoolCommand,
  nodes: z.array(z.object({ node_id: z.string(), ok: z.boolean(), error: CommandError.nullable() })),
  /** Reload only: the nodes reloaded one at a time, in this order (empty when at most one was ready). */
  rolling_order: z.array(z.string()).optional(),
})
export type PoolCommandResult = z.infer<typeof PoolCommandResult>

/** `POST /v2/nodes/{id}/drain`: a drain of each pool the node serves, on that node only. */
export const NodeDrainResult = z.object({
  node_id: z.string(),
  command: z.literal('drain'),
  pools: z.array(z.object({ pool: z.string(), ok: z.boolean(), error: CommandError.nullable() })),
})
export type NodeDrainResult = z.infer<typeof NodeDrainResult>

export const CreateApiKeyRequest = z.strictObject({
  name: Name,
  scopes: z.array(ApiKeyScope).min(1).default(['inference']),
  limits: KeyLimits.default({}),
})

/** `PATCH /v2/api-keys/{id}`: `limits` replaces the key's limits; a field left out falls back to the pool's default. */
export const PatchApiKeyRequest = z.strictObject({ limits: KeyLimits })
export type PatchApiKeyRequest = z.infer<typeof PatchApiKeyRequest>

export const ApiKeyView = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(ApiKeyScope),
  limits: KeyLimits,
  created_at: Timestamp,
  revoked_at: Timestamp,
})
export type ApiKeyView = z.infer<typeof ApiKeyView>

/** The key appears here once and is never retrievable again. */
export const CreateApiKeyResponse = ApiKeyView.extend({ key: z.string() })

export const NodeList = z.object({ nodes: z.array(NodeView) })
export const PoolList = z.object({ pools: z.array(PoolView) })
export const ApiKeyList = z.object({ api_keys: z.array(ApiKeyView) })
export type NodeList = z.infer<typeof NodeList>
export type PoolList = z.infer<typeof PoolList>
export type ApiKeyList = z.infer<typeof ApiKeyList>

/** `GET /v2/debug/costs`: an isolate's Durable Object entry points by `Class.method`, and storage writes. */
export const DebugCosts = z.object({
  entry_points: z.record(z.string(), z.int()),
  storage_writes: z.int(),
  /**
   * Dispatches of task attempts, and the one-way messages between the Worker and objects each
   * waited for in sequence before its dispatch reached the NodeObject that holds the agent's
   * socket (Worker → PoolObject → NodeObject is 2; with a reply to the Worker in between, 3).
   */
  critical_path: z.object({ dispatches: z.int(), legs_before_dispatch: z.int() }),
})
export type DebugCosts = z.infer<typeof DebugCosts>

/** `POST /v2/debug/pool-ceiling`: admit-and-release cycles against a scratch pool of fake ready replicas. */
export const PoolCeilingRequest = z.strictObject({
  tasks: z.int().min(1).max(100_000).default(2_000),
  /** Cycles in flight at once. */
  concurrency: z.int().min(1).max(1_024).default(64),
  /** Fake nodes, each with one ready replica of `slots` slots. */
  nodes: z.int().min(1).max(1_024).default(64),
  slots: z.int().min(1).max(4_096).default(16),
})
export type PoolCeilingRequest = z.infer<typeof PoolCeilingRequest>

export const PoolCeilingResult = z.object({
  pool: z.string(),
  tasks: z.int(),
  concurrency: z.int(),
  nodes: z.int(),
  slots: z.int(),
  errors: z.int(),
  wall_ms: z.number(),
  tasks_per_second: z.number(),
})
export type PoolCeilingResult = z.infer<typeof PoolCeilingResult>
