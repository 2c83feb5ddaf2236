import { AttemptEnd, RejectReason } from '../../protocol/index.ts'
import type { HistogramSnapshot, PoolMetrics } from '../../protocol/index.ts'
import { MetricStore } from '../storage/metric-store.ts'
import type { AttemptReport, TaskOutcome } from './grant.ts'
import type { PlacementCandidate } from './placement.ts'

/** Bucket upper bounds, in seconds or tokens per second. */
export const TTFT_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const
export const QUEUE_WAIT_BUCKETS_S = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120] as const
export const TOKENS_PER_SECOND_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000] as const

type Counter =
  'tasks_admitted' | 'tasks_rejected' | 'tasks_ended' | 'task_failovers' | 'tasks_preempted' | 'slots_reclaimed' | 'prompt_tokens' | 'completion_tokens'
type Histogram = 'ttft_seconds' | 'queue_wait_seconds' | 'task_tokens_per_second'

const BUCKETS = {
  ttft_seconds: TTFT_BUCKETS_S,
  queue_wait_seconds: QUEUE_WAIT_BUCKETS_S,
  task_tokens_per_second: TOKENS_PER_SECOND_BUCKETS,
} as const satisfies Record<Histogram, readonly number[]>

const ATTEMPT_END = {
  completed: 'completed',
  failed: 'failed',
  failed_before_start: 'failed',
  cancelled: 'cancelled',
} as const satisfies Record<TaskOutcome, AttemptEnd>

function byLabel<K extends string>(values: Record<string, number>, labels: readonly K[]): Partial<Record<K, number>> {
  const picked: Partial<Record<K, number>> = {}
  for (const label of labels) {
    const value = values[label]
    if (value !== undefined) picked[label] = value
  }
  return picked
}

/**
 * What a PoolObject counts: admissions, refusals by reason, attempt ends by outcome, failovers,
 * tokens, and the time-to-first-token, queue-wait and tokens-per-second histograms. Kept in
 * the object's SQLite, so a counter never goes back after eviction.
 */
export class PoolMetricsRecorder {
  readonly #store: MetricStore

  constructor(sql: SqlStorage) {
    this.#store = new MetricStore(sql)
  }

  count(name: Counter, label = '', by = 1): void {
    this.#store.count(name, label, by)
  }

  /** When gathered changes must be written (the pool's alarm does it), or null. */
  get flushDueAt(): number | null {
    return this.#store.flushDueAt
  }

  flush(): void {
    this.#store.flush()
  }

  observe(name: Histogram, value: number): void {
    this.#store.observe(name, BUCKETS[name], value)
  }

  rejected(reason: RejectReason): void {
    this.count('tasks_rejected', reason)
  }

  /** A task got a slot; only its first grant says how long a new task waited. */
  granted({ attempt, enqueuedAt, now }: { attempt: number; enqueuedAt: number; now: number }): void {
    if (attempt === 0) this.observe('queue_wait_seconds', (now - enqueuedAt) / 1000)
  }

  /** A granted attempt was released by its Worker with what it saw. */
  ended({ outcome, report, grantedAt, now }: { outcome: TaskOutcome; report: AttemptReport; grantedAt: number | null; now: number }): void {
    this.count('tasks_ended', ATTEMPT_END[outcome])
    if (report.ttftMs !== null) this.observe('ttft_seconds', report.ttftMs / 1000)
    if (!report.usage) return
    this.count('prompt_tokens', '', report.usage.prompt_tokens)
    this.count('completion_tokens', '', report.usage.completion_tokens)
    const slotSeconds = grantedAt === null ? 0 : (now - grantedAt) / 1000
    if (outcome === 'completed' && slotSeconds > 0) this.observe('task_tokens_per_second', report.usage.completion_tokens / slotSeconds)
  }

  /** The counters and histograms, with the gauges the pool reads from its queue and replica table. */
  snapshot(pool: string, live: { queueDepth: number; replicas: readonly PlacementCandidate[] }): PoolMetrics {
    const store = this.#store
    const replicas: PoolMetrics['replicas'] = {}
    for (const r of live.replicas) replicas[r.state] = (replicas[r.state] ?? 0) + 1
    const histogram = (name: Histogram): HistogramSnapshot => store.histogram(name, BUCKETS[name])
    return {
      pool,
      queue_depth: live.queueDepth,
      slots: live.replicas.filter((r) => r.state === 'ready').reduce((n, r) => n + r.slots, 0),
      slots_busy: live.replicas.reduce((n, r) => n + r.busy, 0),
      replicas,
      tasks_admitted: store.counter('tasks_admitted'),
      tasks_rejected: byLabel(store.counters('tasks_rejected'), RejectReason.options),
      tasks_ended: byLabel(store.counters('tasks_ended'), AttemptEnd.options),
      task_failovers: store.counter('task_failovers'),
      tasks_preempted: store.counter('tasks_preempted'),
      slots_reclaimed: store.counter('slots_reclaimed'),
      prompt_tokens: store.counter('prompt_tokens'),
      completion_tokens: store.counter('completion_tokens'),
      ttft_seconds: histogram('ttft_seconds'),
      queue_wait_seconds: histogram('queue_wait_seconds'),
      task_tokens_per_second: histogram('task_tokens_per_second'),
    }
  }
}
