import type { GenerationEndpoint, Priority } from '../protocol/index.ts'

/** A slot on one replica, granted to one task by its pool's PoolObject. */
export interface Grant {
  taskId: string
  poolId: string
  nodeId: string
  replicaId: string
}

/** What the Worker asks a PoolObject to admit. */
export interface AdmissionRequest {
  taskId: string
  priority: Priority
  /** Placed again after a failover: goes to the head of its class. */
  requeued: boolean
  /** How long the task may wait for a slot before it fails with `queue_timeout`. */
  maxWaitMs: number
  queueCapacity: number
  endpoint: GenerationEndpoint
}

/** How a task left its slot; `failed_before_start` counts against the replica in placement. */
export type TaskOutcome = 'completed' | 'failed' | 'failed_before_start' | 'cancelled' | 'expired'

/**
 * Errors do not keep their class across Durable Object RPC, so admission answers with a value
 * that carries the code, and the Worker turns it back into a `LlorchError`.
 */
export type AdmissionResult =
  | { ok: true; grant: Grant }
  | { ok: false; error: { code: 'no_replica' | 'queue_full' | 'queue_timeout' | 'cancelled'; message: string; retryAfterSeconds?: number } }
