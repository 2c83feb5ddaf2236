import type { TaskProgress } from '../task/task-progress.ts'

/** While a streamed task holds a slot and its engine has sent nothing yet, a `waiting` item comes this often. */
export const FIRST_TOKEN_WAIT_TICK_MS = 1_000

/** What a streamed answer reads: the task's progress, and `waiting` while the first token is due. */
export type StreamProgress = TaskProgress | { kind: 'waiting'; waitedMs: number }

const TICK = Symbol('tick')

/**
 * The task's progress, with a `waiting` item every `FIRST_TOKEN_WAIT_TICK_MS` in which nothing
 * came while the task holds a slot and its engine has sent no output. Each one written to the
 * client (an SSE comment line) shows whether the client is still there: a write to one that went
 * away cancels the task, as it does while queued, instead of at the first token.
 */
export async function* withFirstTokenWaits(iterator: AsyncIterator<TaskProgress>): AsyncGenerator<StreamProgress> {
  let grantedAt: number | null = null
  let pending: Promise<IteratorResult<TaskProgress>> | null = null
  try {
    for (;;) {
      pending ??= iterator.next()
      let timer: ReturnType<typeof setTimeout> | undefined
      const next =
        grantedAt === null
          ? await pending
          : await Promise.race([pending, new Promise<typeof TICK>((resolve) => (timer = setTimeout(() => resolve(TICK), FIRST_TOKEN_WAIT_TICK_MS)))])
      clearTimeout(timer)
      if (next === TICK) {
        yield { kind: 'waiting', waitedMs: grantedAt === null ? 0 : Date.now() - grantedAt }
        continue
      }
      pending = null
      if (next.done) return
      const progress = next.value
      // Placed (again): the first token is due from now on; anything but `started` ends the wait.
      if (progress.kind === 'granted') grantedAt = Date.now()
      else if (progress.kind !== 'started') grantedAt = null
      yield progress
    }
  } finally {
    void iterator.return?.()
  }
}
