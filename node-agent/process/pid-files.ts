import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import type { Log } from '../log/log.ts'
import { stopProcessGroup } from './process-group.ts'
import { isSameProcess } from './process-identity.ts'
import type { ProcessIdentity } from './process-identity.ts'

/** One running engine, written when it is spawned and removed once it has exited. */
export const EnginePidRecord = z.object({
  pool: z.string(),
  pid: z.int().positive(),
  /** The engine leads its own process group, so this equals `pid`. */
  pgid: z.int().positive(),
  start_time: z.string(),
  boot_id: z.string(),
  /** For people reading the file; secret-looking flag values are masked. */
  command: z.string(),
  agent_pid: z.int().positive(),
  started_at: z.string(),
})
export type EnginePidRecord = z.infer<typeof EnginePidRecord>

export function enginePidDir(stateDir: string): string {
  return path.join(stateDir, 'engines')
}

/** One file per engine process: `engines/<pool>.<pid>.pid` (the pool id URI-encoded). */
function pidFilePath(stateDir: string, pool: string, pid: number): string {
  return path.join(enginePidDir(stateDir), `${encodeURIComponent(pool)}.${pid}.pid`)
}

export function writeEnginePidFile(stateDir: string, record: EnginePidRecord): void {
  const dir = enginePidDir(stateDir)
  mkdirSync(dir, { recursive: true })
  const file = pidFilePath(stateDir, record.pool, record.pid)
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record)}\n`)
  renameSync(`${file}.tmp`, file)
}

export function removeEnginePidFile(stateDir: string, pool: string, pid: number): void {
  rmSync(pidFilePath(stateDir, pool, pid), { force: true })
}

export function readEnginePidFiles(stateDir: string): { file: string; record: EnginePidRecord | null }[] {
  let names: string[]
  try {
    names = readdirSync(enginePidDir(stateDir))
  } catch {
    return []
  }
  return names
    .filter((name) => name.endsWith('.pid'))
    .map((name) => {
      const file = path.join(enginePidDir(stateDir), name)
      try {
        const parsed = EnginePidRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')))
        return { file, record: parsed.success ? parsed.data : null }
      } catch {
        return { file, record: null }
      }
    })
}

export interface ReapedEngine {
  pool: string
  pid: number
  outcome: 'gone' | 'terminated' | 'killed'
}

/**
 * Stops engines a previous agent left running (it was killed with SIGKILL, or crashed). An engine
 * is stopped only when its pid still names the same process (same start time and boot), so a pid
 * reused by an unrelated program is never signalled. Every PID file is removed.
 */
export async function reapOrphanEngines({ stateDir, graceMs, log }: { stateDir: string; graceMs: number; log: Log }): Promise<ReapedEngine[]> {
  const reaped = await Promise.all(
    readEnginePidFiles(stateDir).map(async ({ file, record }): Promise<ReapedEngine | null> => {
      if (record === null) {
        log.warn('agent.orphan_pid_file_unreadable', { file })
        rmSync(file, { force: true })
        return null
      }
      const identity: ProcessIdentity = { pid: record.pid, start_time: record.start_time, boot_id: record.boot_id }
      let outcome: ReapedEngine['outcome'] = 'gone'
      if (isSameProcess(identity)) {
        const stopped = await stopProcessGroup({ pgid: record.pgid, graceMs })
        outcome = stopped === 'killed' ? 'killed' : 'terminated'
        log.warn('agent.orphan_stopped', { pool: record.pool, pid: record.pid, outcome, previous_agent_pid: record.agent_pid })
      }
      rmSync(file, { force: true })
      return { pool: record.pool, pid: record.pid, outcome }
    }),
  )
  return reaped.filter((r) => r !== null)
}
