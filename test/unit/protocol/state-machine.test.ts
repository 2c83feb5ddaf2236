import { describe, expect, it } from 'vitest'
import { IllegalTransitionError, NATIVE_TASK_TRANSITIONS, canTransition, transition } from '../../../protocol/index.ts'
import type { NativeTaskState, TransitionTable } from '../../../protocol/index.ts'

type Light = 'red' | 'green' | 'amber'
const LIGHT: TransitionTable<Light> = { red: ['green'], green: ['amber'], amber: ['red'] }

describe('transition', () => {
  it('answers the new state for a move the table allows', () => {
    expect(transition(LIGHT, 'red', 'green', { machine: 'light', subject: 'light 1' })).toBe('green')
    expect(canTransition(LIGHT, 'green', 'amber')).toBe(true)
  })

  it('throws one error class naming the machine, the subject and both states for any other move', () => {
    const move = () => transition(LIGHT, 'red', 'amber', { machine: 'light', subject: 'light 1' })
    expect(move).toThrow(IllegalTransitionError)
    expect(move).toThrow('light 1 cannot go from red to amber (light)')
    expect(canTransition(LIGHT, 'red', 'red')).toBe(false)
  })

  it('keeps a native task that ended where it is', () => {
    for (const end of ['completed', 'failed', 'cancelled', 'expired'] as const satisfies NativeTaskState[]) {
      expect(NATIVE_TASK_TRANSITIONS[end]).toEqual([])
      expect(() => transition<NativeTaskState>(NATIVE_TASK_TRANSITIONS, end, 'running', { machine: 'native task', subject: 'task t' })).toThrow(
        IllegalTransitionError,
      )
    }
  })
})
