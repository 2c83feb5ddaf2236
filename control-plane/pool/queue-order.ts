import type { Priority } from '../../protocol/index.ts'

export const PRIORITY_RANK = { interactive: 0, batch: 1 } as const satisfies Record<Priority, number>

/**
 * The queue's order inside one key as SQL: interactive before batch, tasks placed again after a
 * failover at the head of their class, then first come first served. Across keys the order is
 * `serviceOrder`'s.
 */
export const QUEUE_ORDER_SQL = 'priority_rank ASC, requeued DESC, seq ASC'

/** Keys whose last turn is remembered; past that the memory starts again (every key equal). */
const MAX_REMEMBERED_KEYS = 10_000

/** What the order needs of a queued task. */
export interface QueuedTask {
  task_id: string
  api_key_id: string | null
  priority_rank: number
  requeued: number
  seq: number
  enqueued_at: number
}

export interface ServiceState {
  now: number
  batchAgingMs: number
  /** When each key (by `turnKey`) was last granted a slot; never granted counts as 0. */
  lastServedAt: (key: string) => number
}

/**
 * Groups, served one after the other: failovers of interactive tasks, aged batch tasks, the
 * interactive class taking turns by key, failovers of batch tasks, the batch class taking turns.
 */
const GROUP = { interactiveAgain: 0, agedBatch: 1, interactive: 2, batchAgain: 3, batch: 4 } as const
type Group = (typeof GROUP)[keyof typeof GROUP]
const TAKES_TURNS: ReadonlySet<Group> = new Set([GROUP.interactive, GROUP.batch])

/** The key a task takes its turns as; the admin token (no key) is one key of its own. */
export function turnKey(apiKeyId: string | null): string {
  return apiKeyId ?? ''
}

function groupOf(task: QueuedTask, { now, batchAgingMs }: ServiceState): Group {
  if (task.priority_rank === PRIORITY_RANK.interactive) return task.requeued ? GROUP.interactiveAgain : GROUP.interactive
  if (task.enqueued_at + batchAgingMs <= now) return GROUP.agedBatch
  return task.requeued ? GROUP.batchAgain : GROUP.batch
}

/**
 * The order queued tasks will be granted slots in; the pump grants in this order and queue
 * positions are read from it. Inside a class keys take turns (round robin): the n-th task of
 * every key goes before the (n+1)-th of any, and among n-th tasks the key served longest ago
 * goes first, so one key with a thousand tasks queued delays another key's single task by one
 * slot's turn at most. Failovers and aged batch tasks go first, oldest first.
 */
export function serviceOrder<T extends QueuedTask>(tasks: readonly T[], state: ServiceState): T[] {
  const inKeyOrder = [...tasks].sort((a, b) => a.priority_rank - b.priority_rank || b.requeued - a.requeued || a.seq - b.seq)
  const turns = new Map<string, number>()
  const ranked = inKeyOrder.map((task) => {
    const group = groupOf(task, state)
    const key = turnKey(task.api_key_id)
    const slot = `${group}:${key}`
    const turn = turns.get(slot) ?? 0
    turns.set(slot, turn + 1)
    return { task, group, turn: TAKES_TURNS.has(group) ? turn : 0, served: TAKES_TURNS.has(group) ? state.lastServedAt(key) : 0 }
  })
  ranked.sort((a, b) => a.group - b.group || a.turn - b.turn || a.served - b.served || a.task.seq - b.task.seq)
  return ranked.map((r) => r.task)
}

/** When each key was last granted a slot, for taking turns; an in-memory cache, rebuilt empty. */
export class ServiceTurns {
  readonly #lastServedAt = new Map<string, number>()

  served(apiKeyId: string | null, now: number): void {
    if (this.#lastServedAt.size >= MAX_REMEMBERED_KEYS) this.#lastServedAt.clear()
    this.#lastServedAt.set(turnKey(apiKeyId), now)
  }

  lastServedAt = (key: string): number => this.#lastServedAt.get(key) ?? 0
}

/** Seconds a client turned away with 429 should wait: the queue's expected drain time, bounded. */
export function retryAfterSeconds({ queued, readySlots, averageTaskMs }: { queued: number; readySlots: number; averageTaskMs: number }): number {
  const seconds = Math.ceil((averageTaskMs * Math.max(1, queued)) / Math.max(1, readySlots) / 1000)
  return Math.min(60, Math.max(1, seconds))
}
