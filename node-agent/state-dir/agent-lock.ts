import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { LlorchError } from '../../protocol/index.ts'
import { isSameProcess, readProcessIdentity } from '../process/process-identity.ts'

const LockRecord = z.object({ pid: z.int().positive(), start_time: z.string(), boot_id: z.string() })
type LockRecord = z.infer<typeof LockRecord>

export function agentLockPath(stateDir: string): string {
  return path.join(stateDir, 'agent.lock')
}

/** The agent holding the lock on `stateDir`, if it still runs. */
export function lockHolder(stateDir: string): LockRecord | null {
  try {
    const parsed = LockRecord.safeParse(JSON.parse(readFileSync(agentLockPath(stateDir), 'utf8')))
    return parsed.success && isSameProcess(parsed.data) ? parsed.data : null
  } catch {
    return null
  }
}

/**
 * One agent per state directory: a second one would take the first one's engines for orphans.
 * A lock left by a dead agent (same pid file, different process) is taken over.
 */
export function acquireAgentLock(stateDir: string): { release(): void } {
  mkdirSync(stateDir, { recursive: true })
  const file = agentLockPath(stateDir)
  const self = readProcessIdentity(process.pid) ?? { pid: process.pid, start_time: 'unknown', boot_id: 'unknown' }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx')
      writeSync(fd, `${JSON.stringify(self)}\n`)
      closeSync(fd)
      return {
        release: () => {
          if (lockHolder(stateDir)?.pid === process.pid) rmSync(file, { force: true })
        },
      }
    } catch (error) {
      if (Reflect.get(Object(error), 'code') !== 'EEXIST') throw error
      const holder = lockHolder(stateDir)
      if (holder !== null) {
        throw new LlorchError('conflict', `another llorch-agent (pid ${holder.pid}) is running with state dir ${stateDir}`)
      }
      rmSync(file, { force: true })
    }
  }
  throw new LlorchError('conflict', `could not take the agent lock ${file}`)
}
