import type { AdmissionResult } from './grant.ts'

/**
 * The admission calls waiting in a pool for a slot, each with its task's affinity key. Held in
 * memory only: after a restart of the object the Workers ask again and wait here anew.
 */
export class Waiters {
  readonly #answers = new Map<string, (result: AdmissionResult) => void>()
  readonly #affinityKeys = new Map<string, string>()

  /** Waits for the task's answer: a grant, or a refusal. */
  wait(taskId: string, affinityKey: string | undefined): Promise<AdmissionResult> {
    if (affinityKey !== undefined) this.#affinityKeys.set(taskId, affinityKey)
    return new Promise<AdmissionResult>((resolve) => this.#answers.set(taskId, resolve))
  }

  has(taskId: string): boolean {
    return this.#answers.has(taskId)
  }

  affinityKeyOf(taskId: string): string | undefined {
    return this.#affinityKeys.get(taskId)
  }

  /** Answers the task's waiting call, if one waits, and forgets it. */
  settle(taskId: string, result: AdmissionResult): void {
    const answer = this.#answers.get(taskId)
    this.#answers.delete(taskId)
    this.#affinityKeys.delete(taskId)
    answer?.(result)
  }
}
