import { describe, expect, it } from 'vitest'
import { TASK_TRANSITIONS, moveTask } from '../../../control-plane/pool/task-states.ts'
import { IllegalTransitionError } from '../../../protocol/index.ts'
import type { TaskPhase } from '../../../control-plane/pool/task-states.ts'

const PHASES: TaskPhase[] = ['queued', 'granted', 'ended']

describe('task transitions', () => {
  it('allows exactly the moves in the table and names both phases otherwise', () => {
    for (const from of PHASES) {
      for (const to of PHASES) {
        const allowed: readonly TaskPhase[] = TASK_TRANSITIONS[from]
        if (allowed.includes(to)) expect(moveTask('t1', from, to)).toBe(to)
        else expect(() => moveTask('t1', from, to)).toThrow(new IllegalTransitionError({ machine: 'pool task', subject: 'task t1', from, to }))
      }
    }
  })

  it('never leaves the end, and never grants a task twice without placing it again', () => {
    expect(TASK_TRANSITIONS.ended).toEqual([])
    expect(() => moveTask('t1', 'granted', 'granted')).toThrow('task t1 cannot go from granted to granted')
  })
})
