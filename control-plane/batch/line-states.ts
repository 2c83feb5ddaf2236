import { z } from 'zod'
import { transition } from '../../protocol/index.ts'

/** Where a line is: waiting to run, running (one task in its pool), or done with its output or error stored. */
export const LineState = z.enum(['pending', 'running', 'done'])
export type LineState = z.infer<typeof LineState>

/** A line runs again only from `pending`; once `done` it never runs again, which is what makes its output exactly once. */
export const LINE_TRANSITIONS = {
  pending: ['running'],
  running: ['pending', 'done'],
  done: [],
} as const satisfies Record<LineState, readonly LineState[]>

export function moveLine(line: number, from: LineState, to: LineState): LineState {
  return transition<LineState>(LINE_TRANSITIONS, from, to, { machine: 'batch line', subject: `line ${line}` })
}
