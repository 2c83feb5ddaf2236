import { REPLICA_TRANSITIONS, transition } from '../../protocol/index.ts'
import type { AgentReplicaState } from '../../protocol/index.ts'

export interface Transition {
  from: AgentReplicaState
  to: AgentReplicaState
  reason: string | null
}

/**
 * A replica's state. Every change goes through `transition()`, checked against the protocol's
 * `REPLICA_TRANSITIONS` table (an illegal move throws `IllegalTransitionError`), and is reported to the listener.
 */
export class ReplicaStateMachine {
  readonly pool: string
  #state: AgentReplicaState = 'stopped'
  #reason: string | null = null
  readonly #onTransition: (transition: Transition) => void

  constructor({ pool, onTransition }: { pool: string; onTransition: (transition: Transition) => void }) {
    this.pool = pool
    this.#onTransition = onTransition
  }

  get state(): AgentReplicaState {
    return this.#state
  }

  /** Why the replica is in its state: the failure and its log tail, a restart delay, a drain. */
  get reason(): string | null {
    return this.#reason
  }

  transition(to: AgentReplicaState, reason: string | null): void {
    const from = this.#state
    this.#state = transition<AgentReplicaState>(REPLICA_TRANSITIONS, from, to, { machine: 'agent replica', subject: `replica of pool "${this.pool}"` })
    this.#reason = reason
    this.#onTransition({ from, to, reason })
  }
}
