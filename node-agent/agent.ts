import { LlorchError } from '../protocol/index.ts'
import type { AgentReplicaState, MissedDeadline, ReplicaReport, TaskEvent } from '../protocol/index.ts'
import type { AgentConfig } from './config/schema.ts'
import { silentLog } from './log/log.ts'
import type { Log } from './log/log.ts'
import { reapOrphanEngines } from './process/pid-files.ts'
import { provisionerFor } from './provision/agent-cache.ts'
import { hasSources } from './provision/pool-sources.ts'
import type { Provisioner } from './provision/provisioner.ts'
import { relayEmbeddings } from './relay/embeddings.ts'
import { relay } from './relay/relay.ts'
import { acquireAgentLock } from './state-dir/agent-lock.ts'
import { removeStatusFile, writeStatusFile } from './state-dir/status-file.ts'
import type { LinkedAgent, ReplicaChangeListener, RunTaskOptions } from './link/linked-agent.ts'
import type { SlotLease } from './supervisor/serving-engine.ts'
import { Supervisor } from './supervisor/supervisor.ts'

/** Task starts and ends, and download progress, refresh the status file at most this often (state changes write at once). */
export const STATUS_REFRESH_MS = 1_000
/** Grace for orphaned engines found at start (SIGTERM, then SIGKILL). */
export const ORPHAN_KILL_GRACE_MS = 5_000

export interface AgentOptions {
  config: AgentConfig
  /** Shown by `llorch-agent status`. */
  configPath?: string | null
  log?: Log
  version?: string
  /** Jitter source for restart delays. */
  random?: () => number
  /** Fetches pools' sources into the cache; made from the config (and `HF_ENDPOINT`) when left out. */
  provisioner?: Provisioner
}

type Phase = 'created' | 'starting' | 'running' | 'stopping' | 'stopped'

/**
 * Everything the agent does on its node: one supervisor per configured pool, the tasks running on
 * them, the status file. The control-plane link drives it through these methods and listens to
 * `onReplicaChange`.
 */
export class Agent implements LinkedAgent {
  readonly config: AgentConfig
  readonly #options: AgentOptions
  readonly #log: Log
  readonly #supervisors = new Map<string, Supervisor>()
  readonly #tasks = new Map<string, { pool: string; lease: SlotLease; cancel: AbortController; finish: () => void }>()
  readonly #listeners = new Set<ReplicaChangeListener>()
  readonly #startedAt = new Date().toISOString()
  #phase: Phase = 'created'
  #lock: { release(): void } | null = null
  #prepared: Promise<void> | null = null
  #stopped: Promise<void> | null = null
  #statusTimer: NodeJS.Timeout | null = null

  constructor(options: AgentOptions) {
    this.config = options.config
    this.#options = options
    this.#log = options.log ?? silentLog
    const fetches = options.config.pools.some(hasSources)
    const provisioner =
      options.provisioner ?? (fetches ? provisionerFor(options.config, { log: this.#log, configFile: options.configPath ?? undefined }) : null)
    for (const pool of options.config.pools) {
      const supervisor = new Supervisor({ pool, stateDir: options.config.state_dir, log: this.#log, random: options.random, provisioner })
      supervisor.on('change', (report, previous) => this.#onChange(report, previous))
      supervisor.on('download', () => this.#scheduleStatus())
      this.#supervisors.set(pool.id, supervisor)
    }
  }

  /**
   * Takes the state-dir lock, stops engines a previous agent left behind, then starts the pools
   * marked `preload: eager`. Resolves once each of those is ready or failed (see `replicas()`).
   */
  async start(): Promise<void> {
    if (this.#phase !== 'created') throw new LlorchError('conflict', `the agent was already started (${this.#phase})`)
    this.#phase = 'starting'
    this.#prepared = this.#prepare()
    await this.#prepared
    if (this.#phase !== 'starting') return
    this.#phase = 'running'
    const eager = [...this.#supervisors.values()].filter((s) => s.pool.preload === 'eager')
    await Promise.all(eager.map((s) => s.start().catch(() => {})))
  }

  async #prepare(): Promise<void> {
    const stateDir = this.config.state_dir
    this.#lock = acquireAgentLock(stateDir)
    const reaped = await reapOrphanEngines({ stateDir, graceMs: ORPHAN_KILL_GRACE_MS, log: this.#log })
    this.#writeStatus()
    this.#log.info('agent.started', {
      version: this.#options.version ?? null,
      pools: this.#supervisors.size,
      orphans_stopped: reaped.length,
      state_dir: stateDir,
    })
  }

  /** Drains every pool (in-flight tasks get `deadlineMs`), stops every engine, releases the state dir. */
  stop({ deadlineMs = this.config.shutdown_drain_ms }: { deadlineMs?: number } = {}): Promise<void> {
    this.#stopped ??= (async () => {
      const before = this.#phase
      this.#phase = 'stopping'
      this.#log.info('agent.stopping', { deadline_ms: deadlineMs, tasks: this.#tasks.size })
      await this.#prepared?.catch(() => {})
      if (before !== 'created') {
        await Promise.all([...this.#supervisors.values()].map((s) => s.drain({ deadlineMs, reason: 'shutdown' })))
      }
      if (this.#statusTimer) clearTimeout(this.#statusTimer)
      if (this.#lock) removeStatusFile(this.config.state_dir)
      this.#lock?.release()
      this.#phase = 'stopped'
      this.#log.info('agent.stopped', {})
    })()
    return this.#stopped
  }

  /** SIGKILL to every engine now: for an agent that cannot shut down in order. */
  kill(): void {
    for (const supervisor of this.#supervisors.values()) supervisor.kill()
  }

  replicas(): ReplicaReport[] {
    return [...this.#supervisors.values()].map((s) => s.report())
  }

  /** Calls `listener` on every replica state change; returns a function that unsubscribes. */
  onReplicaChange(listener: ReplicaChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** The supervisor of one pool, for observing restarts and pids. */
  supervisor(pool: string): Supervisor {
    const supervisor = this.#supervisors.get(pool)
    if (!supervisor) throw new LlorchError('model_not_found', `pool "${pool}" is not configured on this node`)
    return supervisor
  }

  /** Starts a pool's engine; resolves once ready, rejects with why it could not start. */
  preload(pool: string): Promise<void> {
    this.#assertRunning()
    return this.supervisor(pool).start()
  }

  drain({ pool, deadlineMs }: { pool: string; deadlineMs: number }): Promise<void> {
    return this.supervisor(pool).drain({ deadlineMs })
  }

  reload(pool: string): Promise<void> {
    this.#assertRunning()
    return this.supervisor(pool).reload()
  }

  /**
   * Runs a task on a ready replica. Throws a `LlorchError` at once when it cannot take it
   * (`model_not_found`, `engine_unavailable` when not ready, `queue_full` when every slot is busy,
   * `conflict` for a task id already running). After that every outcome is an event, and the
   * slot is released when the iteration ends, however it ends. Iterate it (or cancel it).
   */
  runTask(options: RunTaskOptions): AsyncIterable<TaskEvent> {
    const { taskId, pool, signal } = options
    const supervisor = this.supervisor(pool)
    this.#assertRunning()
    if (this.#tasks.has(taskId)) throw new LlorchError('conflict', `task "${taskId}" is already running on this node`)
    const lease = supervisor.acquire()
    const cancel = new AbortController()
    const startedAt = Date.now()
    let ended = false
    const finish = () => {
      if (ended) return
      ended = true
      lease.release()
      this.#tasks.delete(taskId)
      this.#scheduleStatus()
    }
    this.#tasks.set(taskId, { pool, lease, cancel, finish })
    this.#scheduleStatus()
    const taskSignal = AbortSignal.any([cancel.signal, lease.signal, ...(signal ? [signal] : [])])
    const events =
      options.endpoint === 'embeddings'
        ? relayEmbeddings({ endpoint: lease.endpoint, body: options.body, signal: taskSignal })
        : relay({ endpoint: lease.endpoint, route: options.endpoint, body: options.body, signal: taskSignal })
    const log = this.#log
    return (async function* guarded() {
      let last: TaskEvent | null = null
      try {
        for await (const event of events) {
          last = event
          yield event
        }
        if (last?.kind === 'end') supervisor.served(lease)
      } finally {
        finish()
        const outcome = last?.kind === 'end' ? { finish_reason: last.finish_reason } : last?.kind === 'error' ? { code: last.code } : { outcome: 'abandoned' }
        log.info('task.end', { task: taskId, pool, ms: Date.now() - startedAt, ...outcome })
      }
    })()
  }

  /**
   * Cancels a running task: its engine request is aborted and its slot released. `missed`: the
   * control plane stopped it because its engine missed that deadline, which the replica counts.
   */
  cancel(taskId: string, missed: MissedDeadline | null = null): boolean {
    const task = this.#tasks.get(taskId)
    if (!task) return false
    if (missed) this.supervisor(task.pool).missedDeadline(task.lease, missed)
    task.cancel.abort(new LlorchError('cancelled', `task "${taskId}" was cancelled`))
    task.finish()
    return true
  }

  runningTasks(): string[] {
    return [...this.#tasks.keys()]
  }

  #assertRunning(): void {
    if (this.#phase !== 'running') {
      throw new LlorchError(
        'engine_unavailable',
        this.#phase === 'stopping' || this.#phase === 'stopped' ? 'the agent is shutting down' : 'the agent has not started yet',
      )
    }
  }

  #onChange(report: ReplicaReport, previous: AgentReplicaState): void {
    this.#writeStatus()
    for (const listener of this.#listeners) {
      try {
        listener(report, previous)
      } catch (error) {
        this.#log.error('agent.listener_failed', { err: error instanceof Error ? error.message : String(error) })
      }
    }
  }

  #scheduleStatus(): void {
    this.#statusTimer ??= setTimeout(() => {
      this.#statusTimer = null
      this.#writeStatus()
    }, STATUS_REFRESH_MS)
  }

  #writeStatus(): void {
    if (this.#lock === null || this.#phase === 'stopped') return
    try {
      writeStatusFile(this.config.state_dir, {
        agent_pid: process.pid,
        agent_version: this.#options.version ?? 'unknown',
        started_at: this.#startedAt,
        updated_at: new Date().toISOString(),
        config_path: this.#options.configPath ?? null,
        replicas: this.replicas(),
        running_tasks: this.#tasks.size,
      })
    } catch (error) {
      this.#log.warn('agent.status_write_failed', { err: error instanceof Error ? error.message : String(error) })
    }
  }
}
