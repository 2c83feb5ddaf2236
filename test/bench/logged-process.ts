import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { Reaper } from './reaper.ts'

/** A Node script the bench runs as its own process group, its output going to a log file. */
export interface LoggedProcess {
  name: string
  pid: number
  logFile: string
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<string>
  hasExited(): boolean
  /** The last `lines` lines of its log. */
  logTail(lines?: number): string
}

/**
 * Starts `node SCRIPT ARGS…` with the pinned Node, in its own process group (so a terminal's
 * Ctrl-C reaches only the bench, which then stops it by pid) and tracked by the reaper.
 */
export function spawnLogged({
  name,
  script,
  args,
  logFile,
  reaper,
  nodeArgs = [],
}: {
  name: string
  script: string
  args: string[]
  logFile: string
  reaper: Reaper
  /** Flags for Node itself, before the script (`--cpu-prof`). */
  nodeArgs?: string[]
}): LoggedProcess {
  const log = openSync(logFile, 'a')
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', log, log], detached: true, env: process.env })
  closeSync(log)
  if (child.pid === undefined) throw new Error(`could not start ${name} (${script})`)
  reaper.trackGroup(child.pid)
  let ended = false
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = true
      resolve(String(code ?? signal))
    })
    child.once('error', (error) => {
      ended = true
      resolve(error.message)
    })
  })
  return {
    name,
    pid: child.pid,
    logFile,
    exited,
    hasExited: () => ended,
    logTail(lines = 30) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
      } catch {
        return ''
      }
    },
  }
}

/** Polls `check` until it returns something other than null; fails naming `what` and the process log tail. */
export async function waitUntil<T>(
  what: string,
  check: () => T | null | Promise<T | null>,
  { timeoutMs, watch }: { timeoutMs: number; watch: LoggedProcess[] },
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== null) return value
    const dead = watch.find((p) => p.hasExited())
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}; its log (${dead.logFile}):\n${dead.logTail()}`)
    if (Date.now() > deadline) {
      const logs = watch.map((p) => `--- ${p.name} (${p.logFile}):\n${p.logTail()}`).join('\n')
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs}`)
    }
    await delay(50)
  }
}

/** SIGTERM to the process group, then SIGKILL once `graceMs` has passed without an exit. */
export async function stopLogged(proc: LoggedProcess, graceMs: number): Promise<void> {
  if (proc.hasExited()) return
  try {
    process.kill(-proc.pid, 'SIGTERM')
  } catch {
    return
  }
  const timedOut = Symbol('timed out')
  const result = await Promise.race([proc.exited, delay(graceMs, timedOut)])
  if (result !== timedOut) return
  try {
    process.kill(-proc.pid, 'SIGKILL')
  } catch {
    // gone meanwhile
  }
  await proc.exited
}
