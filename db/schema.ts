import { sql } from 'drizzle-orm'
import { index, integer, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import { DEFAULT_POOL_POLICY } from '../protocol/index.ts'
import type { ApiKeyScope, DownloadProgress, EngineKind, GpuInfo, KeyLimits, NodeStatus, PreloadMode, Priority, ReplicaState } from '../protocol/index.ts'

const createdAt = () =>
  integer('created_at', { mode: 'timestamp_ms' })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`)

/** A GPU machine that may connect an agent. Its token is stored only as a SHA-256 hex hash. */
export const nodes = sqliteTable(
  'nodes',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull(),
    labels: text('labels', { mode: 'json' }).$type<Record<string, string>>().notNull().default({}),
    hostname: text('hostname'),
    agentVersion: text('agent_version'),
    gpus: text('gpus', { mode: 'json' }).$type<GpuInfo[]>().notNull().default([]),
    status: text('status').$type<NodeStatus>().notNull().default('new'),
    lastSeenAt: integer('last_seen_at', { mode: 'timestamp_ms' }),
    createdAt: createdAt(),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    /** Cordoned for maintenance: no new task, no replica started on it, until uncordoned. */
    cordonedAt: integer('cordoned_at', { mode: 'timestamp_ms' }),
  },
  (t) => [uniqueIndex('nodes_name_unique').on(t.name), uniqueIndex('nodes_token_hash_unique').on(t.tokenHash)],
)

/** A model clients can ask for; the id is the public model name. */
export const pools = sqliteTable('pools', {
  id: text('id').primaryKey(),
  engine: text('engine').$type<EngineKind>().notNull(),
  // The policy: each column named for its field of `PoolPolicy`, its default that field's.
  queueCapacity: integer('queue_capacity').notNull().default(DEFAULT_POOL_POLICY.queue_capacity),
  preloadMode: text('preload_mode').$type<PreloadMode>().notNull().default(DEFAULT_POOL_POLICY.preload_mode),
  idleDrainMs: integer('idle_drain_ms'),
  defaultPriority: text('default_priority').$type<Priority>().notNull().default(DEFAULT_POOL_POLICY.default_priority),
  firstTokenTimeoutMs: integer('first_token_timeout_ms').notNull().default(DEFAULT_POOL_POLICY.first_token_timeout_ms),
  idleTimeoutMs: integer('idle_timeout_ms').notNull().default(DEFAULT_POOL_POLICY.idle_timeout_ms),
  /** null: the policy's default aging. */
  batchAgingMs: integer('batch_aging_ms'),
  batchSlotShare: real('batch_slot_share').notNull().default(DEFAULT_POOL_POLICY.batch_slot_share),
  /** Limits for keys that set none of their own. */
  keyLimits: text('key_limits', { mode: 'json' }).$type<KeyLimits>().notNull().default(DEFAULT_POOL_POLICY.key_limits),
  queueTimeoutMs: integer('queue_timeout_ms').notNull().default(DEFAULT_POOL_POLICY.queue_timeout_ms),
  runTimeoutMs: integer('run_timeout_ms').notNull().default(DEFAULT_POOL_POLICY.run_timeout_ms),
  scaleOutWaitMs: integer('scale_out_wait_ms').notNull().default(DEFAULT_POOL_POLICY.scale_out_wait_ms),
  createdAt: createdAt(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }),
})

/** One engine process serving a pool on a node, as last reported by that node's agent. */
export const replicas = sqliteTable(
  'replicas',
  {
    id: text('id').primaryKey(),
    poolId: text('pool_id')
      .notNull()
      .references(() => pools.id, { onDelete: 'cascade' }),
    nodeId: text('node_id')
      .notNull()
      .references(() => nodes.id, { onDelete: 'cascade' }),
    state: text('state').$type<ReplicaState>().notNull(),
    slots: integer('slots').notNull(),
    engine: text('engine').$type<EngineKind>().notNull(),
    engineVersion: text('engine_version'),
    reason: text('reason'),
    /** While the agent fetches the replica's files: how far it got (as of the last heartbeat). */
    download: text('download', { mode: 'json' }).$type<DownloadProgress>(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [uniqueIndex('replicas_pool_node_unique').on(t.poolId, t.nodeId), index('replicas_node_idx').on(t.nodeId)],
)

/** Client credentials. Only a SHA-256 hex hash of the key is stored; `prefix` identifies it in listings. */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    keyHash: text('key_hash').notNull(),
    prefix: text('prefix').notNull(),
    scopes: text('scopes', { mode: 'json' }).$type<ApiKeyScope[]>().notNull(),
    /** Fields left out fall back to the pool's `key_limits`. */
    limits: text('limits', { mode: 'json' }).$type<KeyLimits>().notNull().default({}),
    createdAt: createdAt(),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
  },
  (t) => [uniqueIndex('api_keys_key_hash_unique').on(t.keyHash)],
)

/** Tokens used per finished task. */
export const usage = sqliteTable(
  'usage',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    apiKeyId: text('api_key_id'),
    poolId: text('pool_id').notNull(),
    taskId: text('task_id').notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('usage_key_time_idx').on(t.apiKeyId, t.createdAt), uniqueIndex('usage_task_unique').on(t.taskId)],
)

export type NodeRow = typeof nodes.$inferSelect
export type PoolRow = typeof pools.$inferSelect
export type ReplicaRow = typeof replicas.$inferSelect
export type ApiKeyRow = typeof apiKeys.$inferSelect
export type UsageRow = typeof usage.$inferSelect
