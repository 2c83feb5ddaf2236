import { z } from 'zod'
import { ErrorCode, GenerationEndpoint, KeyLimits, NativeTaskState, Priority, Usage } from '../../protocol/index.ts'
import type { TaskEvent } from '../../protocol/index.ts'
import { countStorageWrite } from '../runtime/cost-counts.ts'
import type { Generation } from '../task/generation.ts'

/** What a native task's object keeps in storage: enough to answer `GET /v2/tasks/{id}` and to run it after an eviction. */
export const StoredTask = z.object({
  taskId: z.string(),
  poolId: z.string(),
  apiKeyId: z.string(),
  model: z.string(),
  endpoint: GenerationEndpoint,
  /** The client's choice; null for the pool's default. */
  priority: Priority.nullable(),
  requestId: z.string().nullable(),
  keyLimits: KeyLimits,
  affinityKey: z.string().nullable(),
  /** What admission said of the key's limits when the task was enqueued; null when none counted it. */
  rateLimitHeaders: z.record(z.string(), z.string()).nullable(),
  state: NativeTaskState,
  createdAt: z.number(),
  attachBy: z.number(),
  attachedAt: z.number().nullable(),
  startedAt: z.number().nullable(),
  firstTokenAt: z.number().nullable(),
  endedAt: z.number().nullable(),
  usage: Usage.nullable(),
  error: z.object({ code: ErrorCode, message: z.string(), retriable: z.boolean() }).nullable(),
  /**
   * No event id handed out exceeds this: ids are reserved in blocks of `EVENT_ID_BLOCK`, one
   * write per block, so the ids after an object restart start above any a reader has seen.
   */
  eventIdsReservedThrough: z.int().nonnegative(),
  bodyParts: z.int().nonnegative(),
})
export type StoredTask = z.infer<typeof StoredTask>

export type TaskFailure = NonNullable<StoredTask['error']>

/** Characters per stored part of a request body, well under the per-value limit of Durable Object storage. */
const BODY_PART_CHARS = 512 * 1024

const TASK_KEY = 'task'
const bodyKey = (part: number) => `body:${part}`

/** A native task's record and request body in its object's key-value storage. */
export class TaskStorage {
  readonly #kv: SyncKvStorage

  constructor(kv: SyncKvStorage) {
    this.#kv = kv
  }

  read(): StoredTask | null {
    const stored: unknown = this.#kv.get(TASK_KEY)
    return stored === undefined ? null : StoredTask.parse(stored)
  }

  write(task: StoredTask): void {
    countStorageWrite()
    this.#kv.put(TASK_KEY, task)
  }

  /** Saves the request body in parts; answers how many. */
  writeBody(generation: Generation): number {
    const json = JSON.stringify(generation)
    const parts = Math.max(1, Math.ceil(json.length / BODY_PART_CHARS))
    for (let part = 0; part < parts; part += 1) {
      countStorageWrite()
      this.#kv.put(bodyKey(part), json.slice(part * BODY_PART_CHARS, (part + 1) * BODY_PART_CHARS))
    }
    return parts
  }

  /** The body as written; it crossed our own boundary only, so it is not validated again. */
  readBody(parts: number): Generation {
    let json = ''
    for (let part = 0; part < parts; part += 1) json += String(this.#kv.get(bodyKey(part)) ?? '')
    const generation: Generation = JSON.parse(json)
    return generation
  }
}

/** The final state an ending event puts a task in. */
export function finalStateOf(event: Extract<TaskEvent, { kind: 'end' | 'error' }>): 'completed' | 'failed' | 'cancelled' {
  if (event.kind === 'end') return 'completed'
  return event.code === 'cancelled' ? 'cancelled' : 'failed'
}
