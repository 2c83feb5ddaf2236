import type { CommandError } from '../../protocol/index.ts'

/** What the pool gets back for a command it sends a node (preload, drain, reload): the agent's ack, or why none came. */
export interface CommandResult {
  ok: boolean
  error: CommandError | null
}
