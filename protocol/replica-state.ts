import { z } from 'zod'

/** Where one engine process of a pool stands on its node. Both sides report it. */
export const ReplicaState = z.enum(['stopped', 'starting', 'ready', 'draining', 'failed'])
export type ReplicaState = z.infer<typeof ReplicaState>

/** Allowed moves; anything else is a bug in whoever asked for it. */
export const REPLICA_TRANSITIONS = {
  stopped: ['starting'],
  starting: ['ready', 'failed', 'stopped'],
  ready: ['draining', 'failed', 'starting'],
  draining: ['stopped', 'failed'],
  failed: ['starting', 'stopped'],
} as const satisfies Record<ReplicaState, readonly ReplicaState[]>

export function canTransition(from: ReplicaState, to: ReplicaState): boolean {
  const allowed: readonly ReplicaState[] = REPLICA_TRANSITIONS[from]
  return allowed.includes(to)
}
