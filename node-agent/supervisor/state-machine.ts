import { canTransition } from '../../protocol/index.ts'
import type { AgentReplicaState } from '../../protocol/index.ts'

/** A move the transition table does not allow: a bug in whoever asked for it. */
export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError'
  readonly pool: string
  readonly from: AgentReplicaState
  readonly to: AgentReplicaState

  constructor({ pool, from, to }: { pool: string; from: AgentReplicaState; to: AgentReplicaState }) {
    super(`replica of pool "${pool}" cannot go from ${from} to ${to}`)
    this.pool = pool
    this.from = from
    this.to = to
  }
}

export interface Transition {
  from: AgentReplicaState
  to: AgentReplicaState
  reason: string | null
}

/**
 * A replica's state. Every change goes through `transition()`, checked against the protocol's
 * `REPLICA_TRANSITIONS` table, and is reported to the listener.
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
    if (!canTransition(from, to)) throw new IllegalTransitionError({ pool: this.pool, from, to })
    this.#state = to
    this.#reason = reason
    this.#onTransition({ from, to, reason })
  }
}
