import { AttemptEnd, BatchLineOutcome, RejectReason, ReplicaState } from '../../protocol/index.ts'
import type { FleetMetrics, HistogramSnapshot, NodeMetrics, PoolMetrics } from '../../protocol/index.ts'
import type { MetricFamily, MetricType, Sample } from './prometheus-text.ts'

const MIB_BYTES = 1024 * 1024

interface Definition<T> {
  name: string
  help: string
  type: MetricType
  samples(of: T): Sample[]
}

const value = (n: number, labels: Record<string, string> = {}): Sample => ({ labels, value: n })
const histogram = (h: HistogramSnapshot): Sample => ({ labels: {}, histogram: h })

const END_METRIC = {
  completed: 'llorch_pool_tasks_completed_total',
  failed: 'llorch_pool_tasks_failed_total',
  cancelled: 'llorch_pool_tasks_cancelled_total',
} as const satisfies Record<AttemptEnd, string>
const END_HELP = {
  completed: 'Attempts that ended with the engine finishing the task.',
  failed: 'Attempts that ended in an error (after the first token, or with no failover left).',
  cancelled: 'Attempts cancelled by the client or the control plane.',
} as const satisfies Record<AttemptEnd, string>

/** Every pool metric, in the order `/metrics` lists them; each sample gets a `pool` label. */
const POOL_METRICS: Definition<PoolMetrics>[] = [
  { name: 'llorch_pool_queue_depth', type: 'gauge', help: 'Tasks waiting in the pool queue for a slot.', samples: (p) => [value(p.queue_depth)] },
  { name: 'llorch_pool_slots', type: 'gauge', help: 'Slots of the ready replicas of the pool.', samples: (p) => [value(p.slots)] },
  { name: 'llorch_pool_slots_busy', type: 'gauge', help: 'Slots of the pool held by a granted task.', samples: (p) => [value(p.slots_busy)] },
  {
    name: 'llorch_pool_replicas',
    type: 'gauge',
    help: 'Replicas of the pool by state.',
    samples: (p) => ReplicaState.options.map((state) => value(p.replicas[state] ?? 0, { state })),
  },
  { name: 'llorch_pool_tasks_admitted_total', type: 'counter', help: 'New tasks the pool admitted into its queue.', samples: (p) => [value(p.tasks_admitted)] },
  {
    name: 'llorch_pool_tasks_rejected_total',
    type: 'counter',
    help: 'Tasks refused at admission, or that gave up waiting (queue_timeout), by reason.',
    samples: (p) => RejectReason.options.map((reason) => value(p.tasks_rejected[reason] ?? 0, { reason })),
  },
  ...AttemptEnd.options.map((end) => ({
    name: END_METRIC[end],
    type: 'counter' as const,
    help: END_HELP[end],
    samples: (p: PoolMetrics) => [value(p.tasks_ended[end] ?? 0)],
  })),
  {
    name: 'llorch_pool_task_failovers_total',
    type: 'counter',
    help: 'Attempts that failed before their first token and were placed again.',
    samples: (p) => [value(p.task_failovers)],
  },
  {
    name: 'llorch_pool_tasks_preempted_total',
    type: 'counter',
    help: 'Batch lines whose slot was given to an interactive task; their batch runs them again.',
    samples: (p) => [value(p.tasks_preempted)],
  },
  {
    name: 'llorch_pool_slots_reclaimed_total',
    type: 'counter',
    help: 'Grants taken back because their node no longer ran them or they outlived the run deadline.',
    samples: (p) => [value(p.slots_reclaimed)],
  },
  {
    name: 'llorch_pool_prompt_tokens_total',
    type: 'counter',
    help: 'Prompt tokens of finished attempts, as the engine counted them.',
    samples: (p) => [value(p.prompt_tokens)],
  },
  {
    name: 'llorch_pool_completion_tokens_total',
    type: 'counter',
    help: 'Completion tokens of finished attempts, as the engine counted them.',
    samples: (p) => [value(p.completion_tokens)],
  },
  {
    name: 'llorch_pool_ttft_seconds',
    type: 'histogram',
    help: 'Time from admission to the first token the client got.',
    samples: (p) => [histogram(p.ttft_seconds)],
  },
  {
    name: 'llorch_pool_queue_wait_seconds',
    type: 'histogram',
    help: 'Time a new task waited in the queue for its first slot.',
    samples: (p) => [histogram(p.queue_wait_seconds)],
  },
  {
    name: 'llorch_pool_task_tokens_per_second',
    type: 'histogram',
    help: 'Completion tokens per second of slot time, per completed task.',
    samples: (p) => [histogram(p.task_tokens_per_second)],
  },
]

function gpuSamples(n: NodeMetrics, read: (gpu: NodeMetrics['gpus'][number]) => number | null | undefined): Sample[] {
  return n.gpus.flatMap((gpu) => {
    const reading = read(gpu)
    return reading === null || reading === undefined ? [] : [value(reading, { gpu: String(gpu.index), model: gpu.name })]
  })
}

/** Every node metric; each sample gets a `node` label. */
const NODE_METRICS: Definition<NodeMetrics>[] = [
  { name: 'llorch_node_online', type: 'gauge', help: '1 while the node agent is connected and heartbeating.', samples: (n) => [value(n.online ? 1 : 0)] },
  {
    name: 'llorch_node_heartbeat_age_seconds',
    type: 'gauge',
    help: 'Seconds since the agent last said hello or heartbeat.',
    samples: (n) => (n.heartbeat_age_seconds === null ? [] : [value(n.heartbeat_age_seconds)]),
  },
  { name: 'llorch_node_connections_total', type: 'counter', help: 'Agent WebSocket connections accepted.', samples: (n) => [value(n.connections)] },
  { name: 'llorch_node_heartbeats_total', type: 'counter', help: 'Heartbeats received from the agent.', samples: (n) => [value(n.heartbeats)] },
  {
    name: 'llorch_node_streaming_tasks',
    type: 'gauge',
    help: 'Tasks whose events the node is streaming to a client.',
    samples: (n) => [value(n.streaming_tasks)],
  },
  {
    name: 'llorch_node_gpu_memory_used_bytes',
    type: 'gauge',
    help: 'GPU memory in use, as nvidia-smi reports it.',
    samples: (n) => gpuSamples(n, (g) => g.memory_used_mib * MIB_BYTES),
  },
  {
    name: 'llorch_node_gpu_memory_total_bytes',
    type: 'gauge',
    help: 'GPU memory installed, as nvidia-smi reports it.',
    samples: (n) => gpuSamples(n, (g) => g.memory_total_mib * MIB_BYTES),
  },
  {
    name: 'llorch_node_download_bytes',
    type: 'gauge',
    help: "Bytes the agent has fetched of a replica's model and engine files, while it fetches them.",
    samples: (n) => n.downloads.map((d) => value(d.bytes_done, { pool: d.pool })),
  },
  {
    name: 'llorch_node_download_total_bytes',
    type: 'gauge',
    help: 'Bytes of the files the agent is fetching for a replica, where the sources said.',
    samples: (n) => n.downloads.flatMap((d) => (d.bytes_total === null ? [] : [value(d.bytes_total, { pool: d.pool })])),
  },
  {
    name: 'llorch_node_gpu_utilization_ratio',
    type: 'gauge',
    help: 'Share of the last sample period a kernel ran on the GPU (nvidia-smi utilization.gpu / 100), where reported.',
    samples: (n) => gpuSamples(n, (g) => (g.utilization_percent === null || g.utilization_percent === undefined ? null : g.utilization_percent / 100)),
  },
]

function labelled<T>(definitions: Definition<T>[], items: readonly T[], label: (item: T) => Record<string, string>): MetricFamily[] {
  return definitions.map((d) => ({
    name: d.name,
    help: d.help,
    type: d.type,
    samples: items.flatMap((item) => d.samples(item).map((s) => ({ ...s, labels: { ...label(item), ...s.labels } }))),
  }))
}

/** The fleet's numbers as Prometheus metric families: `llorch_pool_*` per pool, `llorch_node_*` per node. */
export function fleetFamilies(fleet: FleetMetrics): MetricFamily[] {
  return [
    ...labelled(POOL_METRICS, fleet.pools, (p) => ({ pool: p.pool })),
    ...labelled(NODE_METRICS, fleet.nodes, (n) => ({ node: n.node })),
    {
      name: BATCH_LINES_METRIC,
      type: 'counter',
      help: 'Batch lines by outcome: completed (output file), failed (error file), retried (a failed run ran again), unrun (cancelled or expired first).',
      samples: BatchLineOutcome.options.map((outcome) => value(fleet.batch_lines[outcome], { outcome })),
    },
    {
      name: 'llorch_metrics_unreachable_objects',
      type: 'gauge',
      help: 'Pool and node objects that did not answer this scrape.',
      samples: (['pool', 'node'] as const).map((kind) => value(fleet.unreachable.filter((u) => u.kind === kind).length, { kind })),
    },
  ]
}

const BATCH_LINES_METRIC = 'llorch_batch_lines_total'

/** Every metric name `/metrics` can show, for documentation and tests. */
export const METRIC_NAMES = [...POOL_METRICS, ...NODE_METRICS].map((d) => d.name)

/** Families with samples only while an agent fetches a replica's files; absent from `/metrics` otherwise. */
export const DOWNLOAD_METRIC_NAMES = ['llorch_node_download_bytes', 'llorch_node_download_total_bytes'] as const
