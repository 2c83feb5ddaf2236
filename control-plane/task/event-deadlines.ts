import type { TaskEvent } from '../../protocol/index.ts'
import { carriesOutput } from './event-stream.ts'

export interface EventDeadlines {
  /** From the start of reading to the first token. */
  firstTokenMs: number
  /** Between two events once tokens flow. */
  idleMs: number
}

const TIMED_OUT = Symbol('timed out')

/**
 * Passes `events` through, and ends them with a `deadline_exceeded` error when the engine (or its
 * node) sends no first token in time, or falls silent once it has started. A hung engine whose
 * health still answers would otherwise hold its client and its slot forever.
 */
export async function* withDeadlines(events: AsyncIterable<TaskEvent>, deadlines: EventDeadlines): AsyncGenerator<TaskEvent> {
  const iterator = events[Symbol.asyncIterator]()
  let tokensSeen = false
  try {
    for (;;) {
      const waitMs = tokensSeen ? deadlines.idleMs : deadlines.firstTokenMs
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), waitMs)))
      const next = await Promise.race([iterator.next(), timeout])
      clearTimeout(timer)
      if (next === TIMED_OUT) {
        const what = tokensSeen ? `sent nothing for ${deadlines.idleMs} ms` : `sent no first token within ${deadlines.firstTokenMs} ms`
        yield { kind: 'error', code: 'deadline_exceeded', message: `the engine ${what}; the task was stopped`, retriable: !tokensSeen }
        return
      }
      if (next.done) return
      if (carriesOutput(next.value)) tokensSeen = true
      yield next.value
    }
  } finally {
    void iterator.return?.()
  }
}
