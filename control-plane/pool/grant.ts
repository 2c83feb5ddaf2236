import type { DownloadProgress, EngineCall, ErrorCode, KeyLimitCode, KeyLimits, LoadingReason, Priority, Refusal, Usage } from '../../protocol/index.ts'

/** A slot on one replica, granted to one attempt of a task by its pool's PoolObject. */
export interface Grant {
  taskId: string
  poolId: string
  nodeId: string
  replicaId: string
  /** Placements of this task so far, from 1. A release names its attempt, so a stale one changes nothing. */
  attempt: number
  /** The pool's deadlines for the attempt: its first token after dispatch, and silence after that. */
  firstTokenTimeoutMs: number
  idleTimeoutMs: number
  /** How long the engine may run the attempt (the dispatch deadline). */
  runTimeoutMs: number
}

/** What the Worker asks a PoolObject to admit. */
export interface AdmissionRequest {
  taskId: string
  /** The client's choice; the pool's default priority when it made none. */
  priority: Priority | undefined
  /** Whose usage the task counts to; null for the bootstrap admin token. */
  apiKeyId: string | null
  /** How long the task may wait for a slot before it fails with `queue_timeout`; the pool's `queue_timeout_ms` when absent. */
  maxWaitMs?: number
  /** How long a granted attempt may hold its slot before the pool takes it back; the pool's `run_timeout_ms` when absent. */
  runDeadlineMs?: number
  /**
   * For `enqueue` (a native task, before a client reads its events): the task is dropped from
   * the queue unless an `admit` for it comes this soon.
   */
  attachWithinMs?: number
  /** Placing the task again: this attempt failed on this node before the first token. */
  retryOf?: RetryOf
  /** The key's own limits, as its credential was cached; merged with the pool's defaults. */
  keyLimits?: KeyLimits
  /** Tasks of one session (or one long prompt prefix) go back to the replica that served it last. */
  affinityKey?: string
  /**
   * A batch line: while it holds a slot that a waiting interactive task needs, the pool gives
   * that slot to the interactive task and the line ends `preempted`, to be run again by its batch.
   */
  preemptible?: boolean
  /**
   * The request itself: a task granted at once is then dispatched to its node by the PoolObject
   * (`dispatched` in the answer), and its Worker only claims the events there, one call fewer
   * before the agent has it. Queued tasks and retries are dispatched by their Worker.
   */
  generation?: EngineCall
}

export interface RetryOf {
  attempt: number
  nodeId: string
  /**
   * Only somewhere else: the node is up but its engine did not answer in time, so going back
   * there would only wait the same deadline again. Refused with `no_replica` when no other
   * replica can serve; the failed attempt then keeps its slot for the caller to release.
   */
  elsewhereOnly?: boolean
}

/** What the Worker saw of a finished attempt, for usage and the pool's service-time statistics. */
export interface AttemptReport {
  /** As the engine counted it; null when the attempt ended without an end event. */
  usage: Usage | null
  /** From admission to the first token the client got; null when none came. */
  ttftMs: number | null
}

/** How a granted attempt left its slot; `failed_before_start` counts against the replica in placement. */
export type TaskOutcome = 'completed' | 'failed' | 'failed_before_start' | 'cancelled'

/** An engine being started that a queued task waits for. */
export interface Loading {
  reason: LoadingReason
  nodeId: string
  message: string
  /** With `downloading`: how far the agent is. */
  download?: DownloadProgress
}

/** Where a queued task stands: tasks ahead of it, when it should start, and what it waits for. */
export interface QueueStanding {
  position: number
  predictedStartMs: number
  loading: Loading | null
}

/** A grant, or why not (see `Refusal`). */
export type AdmissionResult = { ok: true; grant: Grant; rateLimitHeaders?: Record<string, string>; dispatched?: boolean } | AdmissionRefusal

/** What `enqueue` answers at once: where the task stands in the queue, or why it was refused. */
export type EnqueueResult = { ok: true; standing: QueueStanding; rateLimitHeaders?: Record<string, string> } | AdmissionRefusal

export type AdmissionErrorCode = Extract<
  ErrorCode,
  'model_not_found' | 'no_replica' | 'queue_full' | 'queue_timeout' | 'registry_unavailable' | 'cancelled' | 'task_expired' | KeyLimitCode
>

export type AdmissionRefusal = Refusal<AdmissionErrorCode>
