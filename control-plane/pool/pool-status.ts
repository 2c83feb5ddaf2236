import type { ReplicaState } from '../../protocol/index.ts'
import type { LifecycleStatus } from './pool-lifecycle.ts'

/** What a PoolObject tells the admin API of itself: queue depth, slot use per replica, its lifecycle. */
export interface PoolStatus {
  queueDepth: number
  replicas: Array<{ nodeId: string; state: ReplicaState; slots: number; busy: number }>
  lifecycle: LifecycleStatus
}
