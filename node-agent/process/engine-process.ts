import { createWriteStream, mkdirSync, renameSync, statSync } from 'node:fs'
import type { WriteStream } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import type { Log } from '../log/log.ts'
import { EngineExitError } from './exit-error.ts'
import type { EngineExit, TerminationReason } from './exit-error.ts'
import { removeEnginePidFile, writeEnginePidFile } from './pid-files.ts'
import { signalProcessGroup, stopProcessGroup } from './process-group.ts'
import { dyingWithTheAgent } from './parent-death.ts'
import { readProcessIdentity } from './process-identity.ts'
import { LineRingBuffer } from './ring-buffer.ts'

/** An engine log file past this size is moved to `<name>.log.1` when the engine next starts. */
export const ENGINE_LOG_ROTATE_BYTES = 64 * 1024 * 1024

/** What to run: resolved by an engine adapter from the pool config. */
export interface EngineCommand {
  file: string
  args: readonly string[]
  /** Added to the agent's environment. */
  env: Readonly<Record<string, string>>
}

export interface SpawnEngineOptions {
  pool: string
  command: EngineCommand
  stateDir: string
  /** Lines of output kept for the failure report. */
  tailLines: number
  /** Grace for processes the engine leaves in its group after it exits. */
  graceMs: number
  log: Log
}

export function engineLogPath(stateDir: string, pool: string): string {
  return path.join(stateDir, 'logs', `${encodeURIComponent(pool)}.log`)
}

function openLog(file: string): WriteStream {
  mkdirSync(path.dirname(file), { recursive: true })
  try {
    if (statSync(file).size > ENGINE_LOG_ROTATE_BYTES) renameSync(file, `${file}.1`)
  } catch {
    // no log yet
  }
  return createWriteStream(file, { flags: 'a', mode: 0o640 })
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`
}

const SECRET_FLAG = /(key|token|secret|password)/i

/**
 * The command as a shell line for logs and failure reports, with the values of flags that look
 * secret (`--api-key X`, `--hf-token=X`) replaced by `***`.
 */
export function describeCommand(file: string, args: readonly string[]): string {
  const shown = args.map((arg, i) => {
    const flag = /^(--?[\w-]+)=/.exec(arg)
    if (flag?.[1] && SECRET_FLAG.test(flag[1])) return `${flag[1]}=***`
    const previous = args[i - 1]
    return previous?.startsWith('-') && SECRET_FLAG.test(previous) && !arg.startsWith('-') ? '***' : arg
  })
  return [file, ...shown].map(quote).join(' ')
}

/**
 * One engine process: spawned with execa as the leader of its own process group, its stdout and
 * stderr appended to a per-pool log file and kept in a ring buffer, a PID file while it runs.
 */
export class EngineProcess {
  readonly pool: string
  /** Null when the process could not be spawned. */
  readonly pid: number | null
  readonly commandLine: string
  readonly startedAt: number
  /** Resolves once the process has exited and its process group is empty. Never rejects. */
  readonly exited: Promise<EngineExit>
  /** Aborted as soon as the process has exited. */
  readonly exitSignal: AbortSignal
  readonly #ring: LineRingBuffer
  #reason: TerminationReason | null = null
  #done = false

  private constructor(options: SpawnEngineOptions) {
    const { pool, command, stateDir, log } = options
    this.pool = pool
    this.commandLine = describeCommand(command.file, command.args)
    this.startedAt = Date.now()
    this.#ring = new LineRingBuffer({ maxLines: options.tailLines })
    const logPath = engineLogPath(stateDir, pool)
    const logFile = openLog(logPath)
    // A log file that cannot be written (its folder removed, the disk full) costs the log, never the agent.
    logFile.on('error', (error) => log.warn('engine.log_unwritable', { pool, file: logPath, err: error.message }))
    const exitController = new AbortController()
    this.exitSignal = exitController.signal

    const spawned = dyingWithTheAgent(command)
    const subprocess = execa(spawned.file, spawned.args, {
      env: command.env,
      extendEnv: true,
      detached: true,
      cleanup: false,
      reject: false,
      buffer: false,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    })
    this.pid = subprocess.pid ?? null
    logFile.write(`--- ${new Date(this.startedAt).toISOString()} llorch-agent started pid ${this.pid ?? '(none)'}: ${this.commandLine}\n`)
    for (const stream of [subprocess.stdout, subprocess.stderr]) {
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        this.#ring.write(chunk)
        logFile.write(chunk)
      })
      stream.on('error', () => {})
    }

    const identity = this.pid === null ? null : readProcessIdentity(this.pid)
    if (this.pid !== null && identity !== null) {
      writeEnginePidFile(stateDir, {
        pool,
        pid: this.pid,
        pgid: this.pid,
        start_time: identity.start_time,
        boot_id: identity.boot_id,
        command: this.commandLine,
        agent_pid: process.pid,
        started_at: new Date(this.startedAt).toISOString(),
      })
    }

    this.exited = new Promise<EngineExit>((resolve) => {
      const finish = async (exitCode: number | null, signal: string | null, spawnError: string | null) => {
        if (this.#done) return
        this.#done = true
        exitController.abort()
        const durationMs = Date.now() - this.startedAt
        if (this.pid !== null) {
          await stopProcessGroup({ pgid: this.pid, graceMs: options.graceMs })
          removeEnginePidFile(stateDir, pool, this.pid)
        }
        logFile.end(`--- ${new Date().toISOString()} exited: code ${exitCode ?? '-'}, signal ${signal ?? '-'}\n`)
        log.debug('engine.exited', { pid: this.pid, exit_code: exitCode, signal, ms: durationMs })
        resolve({ exitCode, signal, durationMs, terminationReason: this.#reason, spawnError })
      }
      subprocess.nodeChildProcess.once('exit', (code, signal) => void finish(code, signal, null))
      void subprocess.then((result) => {
        const spawnError = this.pid === null ? (result.originalMessage ?? result.shortMessage) : null
        void finish(result.exitCode ?? null, result.signal ?? null, spawnError ?? null)
      })
    })
  }

  static spawn(options: SpawnEngineOptions): EngineProcess {
    return new EngineProcess(options)
  }

  get running(): boolean {
    return !this.#done
  }

  /** The last lines the engine wrote to stdout and stderr. */
  tail(): string {
    return this.#ring.tail()
  }

  /**
   * Stops the process group: SIGTERM, then SIGKILL after `graceMs`. The first reason given is the
   * one recorded; calling it again (or after the process exited) just waits for the exit.
   */
  async terminate({ reason, graceMs }: { reason: TerminationReason; graceMs: number }): Promise<EngineExit> {
    if (this.#done || this.pid === null) return this.exited
    this.#reason ??= reason
    signalProcessGroup(this.pid, 'SIGTERM')
    const pid = this.pid
    const timer = setTimeout(() => signalProcessGroup(pid, 'SIGKILL'), graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGKILL to the whole group at once, for an agent that must exit now. */
  kill(): void {
    if (this.#done || this.pid === null) return
    this.#reason ??= 'shutdown'
    signalProcessGroup(this.pid, 'SIGKILL')
  }

  /** The exit, as an error carrying the command and the output tail. */
  exitError(exit: EngineExit, extra: { startTimeoutMs?: number } = {}): EngineExitError {
    return new EngineExitError({ ...exit, ...extra, pool: this.pool, command: this.commandLine, tail: this.tail() })
  }
}
