import { z } from 'zod'
import { KeyLimitCode } from './key-limits.ts'
import { GpuInfo } from './agent-frames.ts'
import { ReplicaState } from './replica-state.ts'
import { BatchLineCounts } from './batches.ts'

/** Upper bounds of each bucket (the `+Inf` bucket is implied) and how many observations fell at or below each. */
export const HistogramSnapshot = z.object({
  bounds: z.array(z.number()),
  /** Cumulative, one per bound and a last one for `+Inf` (equal to `count`). */
  cumulative: z.array(z.number()),
  sum: z.number(),
  count: z.number(),
})
export type HistogramSnapshot = z.infer<typeof HistogramSnapshot>

/** Why admission refused a task, or why a queued task gave up waiting. */
export const RejectReason = z.enum([
  'queue_full',
  'no_replica',
  'model_not_found',
  'registry_unavailable',
  'queue_timeout',
  'cancelled',
  'task_expired',
  ...KeyLimitCode.options,
])
export type RejectReason = z.infer<typeof RejectReason>

/** How a granted attempt ended, as its pool counts it. */
export const AttemptEnd = z.enum(['completed', 'failed', 'cancelled'])
export type AttemptEnd = z.infer<typeof AttemptEnd>

/** One pool's numbers: counters since the pool's object was created (kept across eviction), gauges now. */
export const PoolMetrics = z.object({
  pool: z.string(),
  queue_depth: z.number(),
  /** Slots of ready replicas, and how many of all slots hold a task. */
  slots: z.number(),
  slots_busy: z.number(),
  replicas: z.partialRecord(ReplicaState, z.number()),
  tasks_admitted: z.number(),
  tasks_rejected: z.partialRecord(RejectReason, z.number()),
  tasks_ended: z.partialRecord(AttemptEnd, z.number()),
  /** Attempts that failed before their first token and went back to the queue. */
  task_failovers: z.number(),
  /** Batch lines whose slot was given to an interactive task; they run again. */
  tasks_preempted: z.number(),
  /** Grants taken back because their node no longer ran them, or they outlived the run deadline. */
  slots_reclaimed: z.number(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  ttft_seconds: HistogramSnapshot,
  queue_wait_seconds: HistogramSnapshot,
  /** Completion tokens per second of slot time, per completed task. */
  task_tokens_per_second: HistogramSnapshot,
})
export type PoolMetrics = z.infer<typeof PoolMetrics>

/** One node's numbers, as its NodeObject knows them. */
export const NodeMetrics = z.object({
  node: z.string(),
  online: z.boolean(),
  /** Seconds since the last hello or heartbeat; null before the first. */
  heartbeat_age_seconds: z.number().nullable(),
  connections: z.number(),
  heartbeats: z.number(),
  /** Tasks whose events this node's object is streaming to a client now. */
  streaming_tasks: z.number(),
  gpus: z.array(GpuInfo),
  /** Replicas whose files the agent is fetching, as of its last report. */
  downloads: z.array(z.object({ pool: z.string(), bytes_done: z.number(), bytes_total: z.number().nullable() })),
})
export type NodeMetrics = z.infer<typeof NodeMetrics>

/** `GET /v2/metrics`: every pool and node the registry lists; `/metrics` renders the same numbers. */
export const FleetMetrics = z.object({
  collected_at: z.iso.datetime(),
  pools: z.array(PoolMetrics),
  nodes: z.array(NodeMetrics),
  /** Batch lines of every batch by how they ended; zero when the count's object did not answer. */
  batch_lines: BatchLineCounts,
  /** Objects that did not answer this collection. */
  unreachable: z.array(z.object({ kind: z.enum(['pool', 'node']), id: z.string() })),
})
export type FleetMetrics = z.infer<typeof FleetMetrics>
