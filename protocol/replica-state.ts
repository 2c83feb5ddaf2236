import { z } from 'zod'

/**
 * Where one engine process of a pool stands on its node. An agent reports every state but
 * `lost`, which only the control plane concludes: the replica's node went away while it was up.
 * `downloading`: the agent fetches the model or engine before it starts the engine.
 */
export const ReplicaState = z.enum(['stopped', 'downloading', 'starting', 'ready', 'draining', 'failed', 'lost'])
export type ReplicaState = z.infer<typeof ReplicaState>

/** The states an agent reports for its own replicas. */
export const AgentReplicaState = ReplicaState.exclude(['lost'])
export type AgentReplicaState = z.infer<typeof AgentReplicaState>

/** Allowed moves on the agent; anything else is a bug in whoever asked for it. */
export const REPLICA_TRANSITIONS = {
  stopped: ['downloading', 'starting'],
  downloading: ['starting', 'failed', 'stopped'],
  starting: ['ready', 'failed', 'stopped'],
  ready: ['draining', 'failed', 'starting'],
  draining: ['stopped', 'failed'],
  failed: ['downloading', 'starting', 'stopped'],
} as const satisfies Record<AgentReplicaState, readonly AgentReplicaState[]>
