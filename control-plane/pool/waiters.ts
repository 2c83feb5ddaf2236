import type { EngineCall } from '../../protocol/index.ts'
import type { AdmissionResult } from './grant.ts'

/** What a waiting admission call brought besides its task id. */
export interface WaitingCall {
  /** Tasks of one session go back to the replica that served it last. */
  affinityKey?: string | undefined
  /** The request itself, when the call carried it: the pool then dispatches the task when it grants it. */
  generation?: EngineCall | undefined
}

/**
 * The admission calls waiting in a pool for a slot, each with what it brought. Held in memory
 * only: after a restart of the object the Workers ask again and wait here anew.
 */
export class Waiters {
  readonly #answers = new Map<string, (result: AdmissionResult) => void>()
  readonly #calls = new Map<string, WaitingCall>()

  /** Waits for the task's answer: a grant, or a refusal. */
  wait(taskId: string, call: WaitingCall): Promise<AdmissionResult> {
    if (call.affinityKey !== undefined || call.generation !== undefined) this.#calls.set(taskId, call)
    return new Promise<AdmissionResult>((resolve) => this.#answers.set(taskId, resolve))
  }

  has(taskId: string): boolean {
    return this.#answers.has(taskId)
  }

  affinityKeyOf(taskId: string): string | undefined {
    return this.#calls.get(taskId)?.affinityKey
  }

  generationOf(taskId: string): EngineCall | undefined {
    return this.#calls.get(taskId)?.generation
  }

  /** Answers the task's waiting call, if one waits, and forgets it. */
  settle(taskId: string, result: AdmissionResult): void {
    const answer = this.#answers.get(taskId)
    this.#answers.delete(taskId)
    this.#calls.delete(taskId)
    answer?.(result)
  }
}
