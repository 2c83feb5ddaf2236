import type { MissedDeadline } from '../../protocol/index.ts'

/** Tasks in a row whose engine missed a deadline, with none served between, after which the engine counts as hung. */
export const HUNG_AFTER_MISSED_DEADLINES = 2

const tasks = (n: number) => `${n} task${n === 1 ? '' : 's'}`

/** Why an engine counts as hung, from the deadlines its tasks missed in a row. */
export function hungReason({ firstToken, idle }: { firstToken: number; idle: number }): string {
  if (idle === 0) return `hung: no first token from ${tasks(firstToken)}`
  if (firstToken === 0) return `hung: silent mid-stream in ${tasks(idle)}`
  return `hung: no first token from ${tasks(firstToken)}, silent mid-stream in ${tasks(idle)}`
}

/**
 * Counts, for one engine instance, the tasks in a row that missed their first-token or idle
 * deadline (the control plane says so when it cancels them). A served task (one that ended) clears
 * the count: a slow prompt now and then is not a hang, two in a row with nothing served are.
 */
export class HangWatch {
  #firstToken = 0
  #idle = 0

  served(): void {
    this.#firstToken = 0
    this.#idle = 0
  }

  /** Counts one miss; answers why the engine counts as hung once it does, else null. */
  missed(deadline: MissedDeadline): string | null {
    if (deadline === 'first_token') this.#firstToken += 1
    else this.#idle += 1
    const counts = { firstToken: this.#firstToken, idle: this.#idle }
    return counts.firstToken + counts.idle >= HUNG_AFTER_MISSED_DEADLINES ? hungReason(counts) : null
  }
}
