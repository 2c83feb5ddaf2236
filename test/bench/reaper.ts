import { rmSync } from 'node:fs'
import { readEnginePidFiles } from '../../node-agent/process/pid-files.ts'
import { isSameProcess } from '../../node-agent/process/process-identity.ts'

function kill(target: number): void {
  try {
    process.kill(target, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * Everything the bench started outside its own process, by pid, so it can all be killed
 * synchronously: from a signal handler, from `exit`, or after an orderly stop as a last sweep.
 */
export class Reaper {
  readonly #groups = new Set<number>()
  readonly #agentStateDirs = new Set<string>()
  readonly #dirs = new Set<string>()

  /** A child started with `detached: true`, so it leads its own process group. */
  trackGroup(pid: number): void {
    this.#groups.add(pid)
  }

  /** An agent's state dir: the engines named in its PID files are killed too. */
  trackAgentStateDir(dir: string): void {
    this.#agentStateDirs.add(dir)
  }

  /** A temporary folder, removed last. */
  trackDir(dir: string): void {
    this.#dirs.add(dir)
  }

  /**
   * SIGKILL to every tracked process group (agents first, so no supervisor restarts an engine),
   * then to the engines their PID files still name (only when the pid is still the same process),
   * then removes the temporary folders.
   */
  reapNow(): void {
    for (const pid of this.#groups) {
      kill(-pid)
      kill(pid)
    }
    this.#groups.clear()
    for (const dir of this.#agentStateDirs) {
      for (const { record } of readEnginePidFiles(dir)) {
        if (record && isSameProcess({ pid: record.pid, start_time: record.start_time, boot_id: record.boot_id })) kill(-record.pgid)
      }
    }
    this.#agentStateDirs.clear()
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true })
    this.#dirs.clear()
  }
}
