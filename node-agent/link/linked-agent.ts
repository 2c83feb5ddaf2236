import type { AgentConfig } from '../config/schema.ts'
import type { AgentReplicaState, EngineCall, MissedDeadline, ReplicaReport, TaskEvent } from '../../protocol/index.ts'
import type { Supervisor } from '../supervisor/supervisor.ts'

export type ReplicaChangeListener = (report: ReplicaReport, previous: AgentReplicaState) => void

/** A task: which route of the pool's engine to call, with which body. */
export type RunTaskOptions = EngineCall & {
  taskId: string
  pool: string
  /** Aborting it cancels the task like `cancel(taskId)`. */
  signal?: AbortSignal
}

/** What the link drives on its node (the `Agent`): replicas and their commands, tasks. */
export interface LinkedAgent {
  readonly config: AgentConfig
  replicas(): ReplicaReport[]
  runningTasks(): string[]
  onReplicaChange(listener: ReplicaChangeListener): () => void
  supervisor(pool: string): Supervisor
  preload(pool: string): Promise<void>
  drain(options: { pool: string; deadlineMs: number }): Promise<void>
  reload(pool: string): Promise<void>
  runTask(options: RunTaskOptions): AsyncIterable<TaskEvent>
  /** `missed`: the control plane stopped the task because its engine missed that deadline. */
  cancel(taskId: string, missed?: MissedDeadline | null): boolean
}

/** What the link reports as it works: one call per frame sent, one per reconnect it schedules. */
export interface LinkMetrics {
  frameSent(type: string, bytes: number): void
  reconnectScheduled(): void
}
