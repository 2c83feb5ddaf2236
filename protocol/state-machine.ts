/** A state machine's allowed moves: from each state, the states it may go to. */
export type TransitionTable<State extends string> = { readonly [From in State]: readonly State[] }

/** A move the table does not allow: a bug in whoever asked for it, named by the machine and the thing that moved. */
export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError'
  readonly machine: string
  readonly subject: string
  readonly from: string
  readonly to: string

  constructor({ machine, subject, from, to }: { machine: string; subject: string; from: string; to: string }) {
    super(`${subject} cannot go from ${from} to ${to} (${machine})`)
    this.machine = machine
    this.subject = subject
    this.from = from
    this.to = to
  }
}

export function canTransition<State extends string>(table: TransitionTable<State>, from: State, to: State): boolean {
  return table[from].includes(to)
}

/**
 * Checks one move against its table and answers the new state, or throws `IllegalTransitionError`.
 * Every state machine in llorch moves through here: the pool's task rows, native tasks, the
 * agent's replicas.
 */
export function transition<State extends string>(
  table: TransitionTable<State>,
  from: State,
  to: State,
  { machine, subject }: { machine: string; subject: string },
): State {
  if (!canTransition(table, from, to)) throw new IllegalTransitionError({ machine, subject, from, to })
  return to
}
