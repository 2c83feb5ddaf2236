import { setTimeout as delay } from 'node:timers/promises'
import { processGroupMembers } from './process-identity.ts'

/** How often a stopping process group is checked. */
export const PROCESS_GROUP_POLL_MS = 20

/** Sends `signal` to every process in group `pgid`; false when the group is already empty. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

async function waitForEmptyGroup(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (processGroupMembers(pgid).length === 0) return true
    if (Date.now() >= deadline) return false
    await delay(PROCESS_GROUP_POLL_MS)
  }
}

/**
 * Stops every process of a group that is not the agent's child (an orphan from a previous agent,
 * or what an engine left behind): SIGTERM, then SIGKILL after `graceMs`.
 * Resolves to how it ended.
 */
export async function stopProcessGroup({ pgid, graceMs }: { pgid: number; graceMs: number }): Promise<'empty' | 'terminated' | 'killed'> {
  if (processGroupMembers(pgid).length === 0) return 'empty'
  signalProcessGroup(pgid, 'SIGTERM')
  if (await waitForEmptyGroup(pgid, graceMs)) return 'terminated'
  signalProcessGroup(pgid, 'SIGKILL')
  await waitForEmptyGroup(pgid, 5_000)
  return 'killed'
}
