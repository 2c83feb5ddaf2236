import type { Priority } from '../../protocol/index.ts'

/** A slot on one replica, granted to one attempt of a task by its pool's PoolObject. */
export interface Grant {
  taskId: string
  poolId: string
  nodeId: string
  replicaId: string
  /** Placements of this task so far, from 1. A release names its attempt, so a stale one changes nothing. */
  attempt: number
}

/** What the Worker asks a PoolObject to admit. */
export interface AdmissionRequest {
  taskId: string
  priority: Priority
  /** How long the task may wait for a slot before it fails with `queue_timeout`. */
  maxWaitMs: number
  /** How long a granted attempt may hold its slot before the pool takes it back. */
  runDeadlineMs: number
  queueCapacity: number
  /** Placing the task again: this attempt failed on this node before the first token. */
  retryOf?: { attempt: number; nodeId: string }
}

/** How a granted attempt left its slot; `failed_before_start` counts against the replica in placement. */
export type TaskOutcome = 'completed' | 'failed' | 'failed_before_start' | 'cancelled'

/**
 * Errors do not keep their class across Durable Object RPC, so admission answers with a value
 * that carries the code, and the Worker turns it back into a `LlorchError`.
 */
export type AdmissionResult =
  | { ok: true; grant: Grant }
  | { ok: false; error: { code: 'no_replica' | 'queue_full' | 'queue_timeout' | 'cancelled'; message: string; retryAfterSeconds?: number } }
