import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Log } from '../db/libsql-server/index.ts'
import { dyingWithTheAgent } from '../node-agent/process/parent-death.ts'

/** The first restart waits this long; each crash in a row doubles it up to RESTART_MAX_DELAY_MS. */
export const RESTART_INITIAL_DELAY_MS = 500
export const RESTART_MAX_DELAY_MS = 30_000
/** A child that ran this long before dying starts again from the initial delay. */
export const RESTART_STABLE_MS = 60_000
/** After SIGTERM a child gets this long before SIGKILL. */
export const STOP_GRACE_MS = 30_000

export interface SupervisedCommand {
  /** For logs: `workerd`, `libsql`, `agent`. */
  name: string
  file: string
  args: readonly string[]
  env: Readonly<Record<string, string>>
  /** After each start, the first and every restart. */
  onStart?: () => void
}

/**
 * One child process kept running: when it exits without being asked to, it is started again
 * after a delay that doubles with each crash in a row (logged with the exit code or signal).
 * Its stdout and stderr go to this process's, line by line. It dies with this process
 * (`setpriv --pdeathsig`), so a killed `llorch serve` leaves no workerd holding its port.
 */
export class SupervisedProcess {
  #child: ChildProcess | null = null
  #stopping = false
  #crashesInARow = 0
  #restartTimer: NodeJS.Timeout | null = null
  #exited: Promise<void> = Promise.resolve()

  readonly command: SupervisedCommand
  readonly #log: Log

  constructor(command: SupervisedCommand, log: Log) {
    this.command = command
    this.#log = log
  }

  get pid(): number | null {
    return this.#child?.pid ?? null
  }

  start(): void {
    const { file, args, env } = dyingWithTheAgent({ file: this.command.file, args: this.command.args, env: this.command.env })
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    const startedAt = Date.now()
    for (const [stream, out] of [[child.stdout, process.stdout] as const, [child.stderr, process.stderr] as const]) {
      createInterface({ input: stream }).on('line', (line) => out.write(`${line}\n`))
    }
    this.#exited = new Promise((resolve) => {
      child.once('error', (error) => this.#log('serve.child_error', { child: this.command.name, error: error.message }))
      child.once('close', (code, signal) => {
        this.#child = null
        resolve()
        if (this.#stopping) return
        this.#crashesInARow = Date.now() - startedAt >= RESTART_STABLE_MS ? 1 : this.#crashesInARow + 1
        const delayMs = Math.min(RESTART_MAX_DELAY_MS, RESTART_INITIAL_DELAY_MS * 2 ** (this.#crashesInARow - 1))
        this.#log('serve.child_exited', { child: this.command.name, code, signal, restart_in_ms: delayMs, crashes_in_a_row: this.#crashesInARow })
        this.#restartTimer = setTimeout(() => {
          this.#restartTimer = null
          if (!this.#stopping) this.start()
        }, delayMs)
      })
    })
    this.#log('serve.child_started', { child: this.command.name, pid: child.pid })
    this.command.onStart?.()
  }

  /** SIGTERM, SIGKILL after STOP_GRACE_MS; resolves once it has exited. Stops restarting it. */
  async stop(graceMs: number = STOP_GRACE_MS): Promise<void> {
    this.#stopping = true
    if (this.#restartTimer) clearTimeout(this.#restartTimer)
    const child = this.#child
    if (!child) return
    child.kill('SIGTERM')
    const force = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await this.#exited
    clearTimeout(force)
    this.#log('serve.child_stopped', { child: this.command.name })
  }
}
