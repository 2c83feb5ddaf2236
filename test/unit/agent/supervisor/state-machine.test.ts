import { describe, expect, it } from 'vitest'
import { ReplicaStateMachine } from '../../../../node-agent/supervisor/state-machine.ts'
import type { Transition } from '../../../../node-agent/supervisor/state-machine.ts'
import { AgentReplicaState, IllegalTransitionError, REPLICA_TRANSITIONS } from '../../../../protocol/index.ts'

describe('replica state machine', () => {
  it('walks stopped → starting → ready → draining → stopped and reports each move with its reason', () => {
    const seen: Transition[] = []
    const machine = new ReplicaStateMachine({ pool: 'p', onTransition: (t) => seen.push(t) })
    machine.transition('starting', 'preload')
    machine.transition('ready', null)
    machine.transition('draining', 'drain')
    machine.transition('stopped', 'drained')
    expect(seen.map((t) => `${t.from}→${t.to}`)).toEqual(['stopped→starting', 'starting→ready', 'ready→draining', 'draining→stopped'])
    expect(machine.reason).toBe('drained')
  })

  it('rejects every move the protocol table does not list, naming both states', () => {
    for (const from of AgentReplicaState.options) {
      for (const to of AgentReplicaState.options) {
        const allowed: readonly AgentReplicaState[] = REPLICA_TRANSITIONS[from]
        if (allowed.includes(to)) continue
        const machine = new ReplicaStateMachine({ pool: 'p', onTransition: () => {} })
        const path: Record<AgentReplicaState, AgentReplicaState[]> = {
          stopped: [],
          downloading: ['downloading'],
          starting: ['starting'],
          ready: ['starting', 'ready'],
          draining: ['starting', 'ready', 'draining'],
          failed: ['starting', 'failed'],
        }
        for (const step of path[from]) machine.transition(step, null)
        expect(() => machine.transition(to, null)).toThrow(new IllegalTransitionError({ machine: 'agent replica', subject: 'replica of pool "p"', from, to }))
        expect(() => machine.transition(to, null)).toThrow(`replica of pool "p" cannot go from ${from} to ${to}`)
      }
    }
  })
})
