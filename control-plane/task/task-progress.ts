import type { TaskEvent } from '../../protocol/index.ts'
import type { QueueStanding } from '../pool/grant.ts'

/**
 * What a task's reader sees: the events its node relays, and, before them, where the task
 * stands in its pool's queue (`queued`, only when asked for) and which replica took it (`granted`).
 */
export type TaskProgress = TaskEvent | { kind: 'queued'; standing: QueueStanding } | { kind: 'granted'; nodeId: string; attempt: number }
