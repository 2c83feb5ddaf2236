import { EventEmitter } from 'node:events'
import { LlorchError, MAX_REPLICA_REASON_CHARS } from '../../protocol/index.ts'
import type { AgentReplicaState, DownloadProgress, MissedDeadline, ReplicaReport } from '../../protocol/index.ts'
import type { PoolConfig } from '../config/schema.ts'
import { engineFor } from '../engines/index.ts'
import type { Engine } from '../engines/index.ts'
import { silentLog } from '../log/log.ts'
import type { Log } from '../log/log.ts'
import { EngineProcess } from '../process/engine-process.ts'
import { EngineExitError } from '../process/exit-error.ts'
import type { TerminationReason } from '../process/exit-error.ts'
import { httpBaseUrl, resolvePort } from '../process/port.ts'
import { hasSources, runnableWith } from '../provision/pool-sources.ts'
import type { Provisioner } from '../provision/provisioner.ts'
import { backoffCeilingMs, backoffDelayMs } from './backoff.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { probeHealth, waitUntilHealthy } from './health-check.ts'
import { probeGeneration } from './probe-generation.ts'
import { ServingEngine } from './serving-engine.ts'
import type { EngineEndpoint, SlotLease } from './serving-engine.ts'
import { ReplicaStateMachine } from './state-machine.ts'
import type { Transition } from './state-machine.ts'

/** How long tasks get to end once their engine was told to stop serving. */
export const LEASE_RELEASE_AFTER_ABORT_MS = 5_000
/** Longest wait for an engine's version after it became ready. */
export const ENGINE_VERSION_TIMEOUT_MS = 2_000
/** Longest wait for an engine to let go of its model once its replica drained (Ollama unloads it). */
export const COOL_DOWN_TIMEOUT_MS = 10_000
/** Download progress is told to listeners (the status file) at most this often. */
export const DOWNLOAD_EVENT_INTERVAL_MS = 1_000

export interface RestartScheduled {
  pool: string
  /** 0 for the first restart after a quiet period. */
  attempt: number
  crashes: number
  delayMs: number
  ceilingMs: number
}

export interface SupervisorEvents {
  /** Every state change, with the new report and the state before it. */
  change: [report: ReplicaReport, previous: AgentReplicaState]
  restart: [RestartScheduled]
  'breaker-open': [{ pool: string; crashes: number }]
  /** Download progress, at most every `DOWNLOAD_EVENT_INTERVAL_MS`. */
  download: [DownloadProgress]
}

export interface SupervisorOptions {
  pool: PoolConfig
  stateDir: string
  log?: Log
  /** Jitter source for restart delays (tests pass `() => 1`). */
  random?: () => number
  /** Fetches the pool's model and engine sources; needed when the pool names any. */
  provisioner?: Provisioner | null
}

type Interruption = 'drain' | 'reload' | 'shutdown'

/** Lets a drain or reload stop a start that is under way. */
class Interrupt {
  readonly controller = new AbortController()
  reason: Interruption | null = null
  interrupt(reason: Interruption): void {
    this.reason ??= reason
    this.controller.abort()
  }
}

function clipReason(summary: string, tail: string): string {
  if (tail === '') return summary.slice(0, MAX_REPLICA_REASON_CHARS)
  const head = `${summary}\n--- last output ---\n`
  const room = Math.max(0, MAX_REPLICA_REASON_CHARS - head.length)
  return (head + (tail.length > room ? tail.slice(tail.length - room) : tail)).slice(0, MAX_REPLICA_REASON_CHARS)
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * Runs one replica of a pool: starts its engine, waits for health, restarts it with backoff after
 * a crash until the circuit breaker opens, drains it, reloads it without a gap where it can.
 * Start, drain and reload run one at a time; a drain or reload interrupts a start under way.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly pool: PoolConfig
  readonly #stateDir: string
  readonly #log: Log
  readonly #random: () => number
  readonly #provisioner: Provisioner | null
  /** The engine as last prepared: sources fetched and their paths filled in. */
  #engine: Engine | null
  #download: DownloadProgress | null = null
  /** Why the last reload left the old engine serving; shown as the reason until the next move. */
  #reloadFailure: string | null = null
  readonly #machine: ReplicaStateMachine
  readonly #breaker: CircuitBreaker
  #current: ServingEngine | null = null
  readonly #retiring = new Set<ServingEngine>()
  readonly #stopping = new Set<Promise<unknown>>()
  #restartTimer: NodeJS.Timeout | null = null
  #interrupt: Interrupt | null = null
  #ops: Promise<unknown> = Promise.resolve()
  #engineVersion: string | null = null
  /** Set when the engine was restarted as hung: the next one must answer a generation, not only its health path. */
  #probeBeforeReady = false

  constructor({ pool, stateDir, log = silentLog, random = Math.random, provisioner = null }: SupervisorOptions) {
    super()
    this.pool = pool
    this.#stateDir = stateDir
    this.#log = log.child({ pool: pool.id })
    this.#random = random
    this.#provisioner = provisioner
    this.#engine = hasSources(pool) ? null : engineFor(runnableWith(pool))
    this.#breaker = new CircuitBreaker({ maxCrashes: pool.restart.max_crashes, windowMs: pool.restart.crash_window_ms })
    this.#machine = new ReplicaStateMachine({ pool: pool.id, onTransition: (t) => this.#reportTransition(t) })
  }

  get state(): AgentReplicaState {
    return this.#machine.state
  }

  get reason(): string | null {
    return this.#machine.reason ?? this.#reloadFailure
  }

  /** The pid of the engine process taking new tasks, if the agent runs one. */
  get pid(): number | null {
    return this.#current?.process?.pid ?? null
  }

  /** Every engine process of this replica still running, including old ones finishing after a reload. */
  get pids(): number[] {
    const all = [this.#current, ...this.#retiring].map((s) => s?.process?.pid ?? null)
    return all.filter((pid) => pid !== null)
  }

  /** Where the engine taking new tasks listens, while there is one. */
  get endpoint(): EngineEndpoint | null {
    return this.#current?.endpoint ?? null
  }

  /** True while a restart after a crash is scheduled. */
  get restartPending(): boolean {
    return this.#restartTimer !== null
  }

  get slotsBusy(): number {
    return [this.#current, ...this.#retiring].reduce((sum, s) => sum + (s?.busy ?? 0), 0)
  }

  report(): ReplicaReport {
    return {
      pool: this.pool.id,
      engine: this.pool.engine,
      state: this.state,
      slots: this.pool.slots,
      slots_busy: this.slotsBusy,
      engine_version: this.#engineVersion,
      reason: this.reason,
      breaker_open: this.state === 'failed' && this.#breaker.open,
      download: this.#download,
    }
  }

  /** Starts the engine (preload). Resolves once ready; rejects with why it could not start. */
  start(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.state === 'ready') return
      if (this.state === 'failed' && this.#breaker.open) {
        throw new LlorchError('conflict', `pool "${this.pool.id}" failed repeatedly and its circuit breaker is open; reload it to try again`)
      }
      if (this.state === 'stopped') this.#breaker.reset()
      this.#cancelRestart()
      await this.#launch('preload')
    })
  }

  /**
   * Takes no new tasks, lets in-flight ones run up to `deadlineMs`, aborts the rest, then stops
   * the engine (SIGTERM, SIGKILL after the pool's grace). Ends in `stopped`.
   */
  drain({ deadlineMs, reason = 'drain' }: { deadlineMs: number; reason?: 'drain' | 'shutdown' }): Promise<void> {
    this.#cancelRestart()
    this.#interrupt?.interrupt(reason)
    return this.#enqueue(async () => {
      this.#cancelRestart()
      const retiring = [...this.#retiring].map((s) => this.#retire(s, { deadlineMs, reason }))
      if (this.state === 'downloading' || this.state === 'starting' || this.state === 'failed') {
        this.#transition('stopped', `${reason === 'shutdown' ? 'agent shut down' : 'drained'} while ${this.state}`)
      } else if (this.state === 'ready') {
        this.#transition('draining', `${reason === 'shutdown' ? 'agent shutting down' : 'draining'}: in-flight tasks have ${deadlineMs} ms`)
        const serving = this.#current
        this.#current = null
        if (serving !== null) {
          await this.#retire(serving, { deadlineMs, reason })
          await this.#engine?.coolDown({ baseUrl: serving.endpoint.baseUrl, signal: AbortSignal.timeout(COOL_DOWN_TIMEOUT_MS) }).catch((error: unknown) => {
            this.#log.warn('replica.cool_down_failed', { err: messageOf(error) })
          })
        }
        this.#transition('stopped', reason === 'shutdown' ? 'agent shut down' : 'drained')
      }
      await Promise.all(retiring)
    })
  }

  /**
   * Restarts the engine and closes the circuit breaker. The pool's sources are asked again first
   * (a new revision is fetched while a ready engine still serves; a failed fetch leaves it
   * serving). A ready replica whose engine takes an `auto` port (or runs on its own) keeps
   * serving: the new engine starts beside the old one, takes new tasks once ready, and the old
   * one is drained. Otherwise it is drained first.
   */
  async reload(): Promise<void> {
    this.#cancelRestart()
    this.#breaker.reset()
    this.#interrupt?.interrupt('reload')
    const retirement = await this.#enqueue(async (): Promise<Promise<void> | null> => {
      this.#cancelRestart()
      this.#breaker.reset()
      const state = this.state
      if (state === 'downloading' || state === 'starting') this.#transition('stopped', 'reloading')
      if (state !== 'ready') {
        await this.#launch('reload', { refresh: true })
        return null
      }
      let engine: Engine
      try {
        engine = await this.#interruptible((interrupt) => this.#prepareEngine(interrupt, { refresh: true }))
      } catch (error) {
        this.#log.warn('replica.reload_fetch_failed', { err: messageOf(error) })
        this.#reloadFailure = clipReason(`reload could not fetch the files, the running engine keeps serving: ${messageOf(error)}`, '')
        this.emit('change', this.report(), this.state)
        throw new LlorchError('engine_unavailable', `pool "${this.pool.id}": ${this.#reloadFailure}`)
      }
      const previous = this.#current
      if (previous === null || !this.#canOverlap()) {
        this.#transition('draining', 'reloading: the engine restarts on its fixed port')
        this.#current = null
        if (previous !== null) await this.#retire(previous, { deadlineMs: this.pool.reload_drain_ms, reason: 'reload' })
        this.#transition('stopped', 'reloading')
        await this.#launch('reload', { engine })
        return null
      }
      let next: ServingEngine
      try {
        next = await this.#interruptible((interrupt) => this.#bringUp(interrupt, engine))
      } catch (error) {
        this.#log.warn('replica.reload_failed', { err: messageOf(error).split('\n')[0] })
        throw error
      }
      this.#adopt(next)
      this.#log.info('replica.reloaded', { old_pid: previous.process?.pid ?? null, new_pid: next.process?.pid ?? null })
      return this.#retire(previous, { deadlineMs: this.pool.reload_drain_ms, reason: 'reload' })
    })
    await retirement
  }

  /** Takes a slot on the ready engine, or throws `engine_unavailable` / `queue_full`. */
  acquire(): SlotLease {
    const serving = this.#current
    if (this.state !== 'ready' || serving === null) {
      throw new LlorchError('engine_unavailable', `pool "${this.pool.id}" is ${this.state} on this node`, { details: { state: this.state } })
    }
    if (serving.busy >= this.pool.slots) {
      throw new LlorchError('queue_full', `all ${this.pool.slots} slots of pool "${this.pool.id}" are busy on this node`)
    }
    return serving.acquire()
  }

  /** A task on `lease` ended served. */
  served(lease: SlotLease): void {
    lease.served()
  }

  /**
   * The control plane stopped a task on `lease` because its engine missed a deadline. The second
   * such task in a row with none served between restarts the engine as hung, counted as a crash;
   * the engine after it is ready only once it answers a one-token probe generation.
   */
  missedDeadline(lease: SlotLease, deadline: MissedDeadline): void {
    const reason = lease.missed(deadline)
    const serving = this.#current
    if (reason === null || serving === null || serving.endpoint !== lease.endpoint || this.state !== 'ready') return
    this.#log.warn('replica.hung', { pid: serving.process?.pid ?? null, reason })
    this.#probeBeforeReady = true
    this.#stopFailing(serving, 'hung', reason)
  }

  /** SIGKILL to every engine process now, for an agent that must exit at once. */
  kill(): void {
    this.#cancelRestart()
    for (const serving of [this.#current, ...this.#retiring]) serving?.process?.kill()
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#ops.then(op)
    this.#ops = result.catch(() => {})
    return result
  }

  #transition(to: AgentReplicaState, reason: string | null): void {
    this.#machine.transition(to, reason)
  }

  #reportTransition({ from, to, reason }: Transition): void {
    this.#reloadFailure = null
    const fields = { from, to, pid: this.pid, ...(to === 'failed' && reason ? { reason: reason.split('\n')[0] } : {}) }
    if (to === 'failed') this.#log.warn('replica.state', fields)
    else this.#log.info('replica.state', fields)
    this.emit('change', this.report(), from)
  }

  /** Whether a new engine can start beside the old one: it takes an `auto` port, or the agent does not run it. */
  #canOverlap(): boolean {
    return this.#engine?.spawns === false || this.pool.port === 'auto'
  }

  #cancelRestart(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer)
    this.#restartTimer = null
  }

  /** Runs `work` with a signal that a drain, reload or shutdown aborts. */
  async #interruptible<T>(work: (interrupt: Interrupt) => Promise<T>): Promise<T> {
    const interrupt = new Interrupt()
    this.#interrupt = interrupt
    try {
      return await work(interrupt)
    } finally {
      if (this.#interrupt === interrupt) this.#interrupt = null
    }
  }

  /**
   * The engine with the pool's sources fetched into the cache (`downloading` shows the progress
   * meanwhile) and their local paths filled in.
   */
  async #prepareEngine(interrupt: Interrupt, { refresh = false }: { refresh?: boolean } = {}): Promise<Engine> {
    if (!hasSources(this.pool)) return (this.#engine ??= engineFor(runnableWith(this.pool)))
    const provisioner = this.#provisioner
    if (provisioner === null) throw new LlorchError('internal_error', `pool "${this.pool.id}" names sources to fetch but the agent has no cache`)
    const signal = interrupt.controller.signal
    try {
      let toldAt = 0
      const onProgress = (progress: DownloadProgress) => {
        this.#download = progress
        if (Date.now() - toldAt < DOWNLOAD_EVENT_INTERVAL_MS) return
        toldAt = Date.now()
        this.emit('download', progress)
      }
      const paths = await provisioner.provision(this.pool, { refresh, signal, onProgress })
      this.#engine = engineFor(runnableWith(this.pool, paths))
      return this.#engine
    } catch (error) {
      if (signal.aborted) throw new LlorchError('cancelled', `fetching the files of pool "${this.pool.id}" was interrupted`)
      throw error
    } finally {
      this.#download = null
    }
  }

  /** (downloading →) starting → ready, or → failed with a restart scheduled (or the breaker open). */
  async #launch(why: string, { refresh = false, engine }: { refresh?: boolean; engine?: Engine } = {}): Promise<void> {
    this.#transition(engine === undefined && hasSources(this.pool) ? 'downloading' : 'starting', why)
    await Promise.all(this.#stopping)
    try {
      const serving = await this.#interruptible(async (interrupt) => {
        const prepared = engine ?? (await this.#prepareEngine(interrupt, { refresh }))
        if (this.state === 'downloading') this.#transition('starting', why)
        return this.#bringUp(interrupt, prepared)
      })
      this.#adopt(serving)
      this.#transition('ready', null)
    } catch (error) {
      if (!(error instanceof LlorchError && error.code === 'cancelled')) this.#crashed(error)
      throw error
    }
  }

  /** Spawns (where the agent runs the engine), waits for health and warm-up. Cleans up on failure. */
  async #bringUp(interrupt: Interrupt, engine: Engine): Promise<ServingEngine> {
    const pool = this.pool
    const signal = interrupt.controller.signal
    const port = await resolvePort({ port: pool.port, host: pool.host })
    const target = { host: pool.host, port }
    const baseUrl = httpBaseUrl(target)
    const healthUrl = `${baseUrl}${engine.healthPath}`
    const command = engine.command(target)
    const grace = pool.stop_grace_ms
    const proc =
      command === null
        ? null
        : EngineProcess.spawn({ pool: pool.id, command, stateDir: this.#stateDir, tailLines: pool.log_tail_lines, graceMs: grace, log: this.#log })
    if (proc) this.#log.info('replica.spawn', { pid: proc.pid, binary: command?.file, port })
    const startedAt = Date.now()
    const deadline = AbortSignal.timeout(pool.start_timeout_ms)
    const stopped = AbortSignal.any([signal, ...(proc ? [proc.exitSignal] : [])])
    const fail = async (reason: TerminationReason, error?: unknown): Promise<never> => {
      if (signal.aborted) {
        await proc?.terminate({ reason: interrupt.reason ?? 'drain', graceMs: grace })
        throw new LlorchError('cancelled', `start of pool "${pool.id}" was interrupted`)
      }
      if (proc && !proc.running) throw proc.exitError(await proc.exited)
      const exit = await proc?.terminate({ reason, graceMs: grace })
      if (error !== undefined) throw error
      if (proc && exit) throw proc.exitError(exit, { startTimeoutMs: pool.start_timeout_ms })
      throw new LlorchError('engine_unavailable', `no healthy answer from ${healthUrl} within ${pool.start_timeout_ms} ms`)
    }
    const health = await waitUntilHealthy({ url: healthUrl, timeoutMs: pool.start_timeout_ms, intervalMs: pool.health_interval_ms, signal: stopped })
    if (health.outcome !== 'healthy') return fail('start-timeout')
    try {
      await engine.warmUp({ baseUrl, signal: AbortSignal.any([stopped, deadline]) })
    } catch (error) {
      return deadline.aborted ? fail('start-timeout') : fail('warm-up', error)
    }
    if (signal.aborted || (proc && !proc.running)) return fail('start-timeout')
    if (this.#probeBeforeReady) {
      try {
        await probeGeneration({ endpoint: { baseUrl, modelName: engine.modelName }, timeoutMs: pool.probe_timeout_ms, signal: stopped })
      } catch (error) {
        return fail('hung', signal.aborted ? error : new LlorchError('engine_unavailable', `restarted as hung, then ${messageOf(error)}`))
      }
      this.#probeBeforeReady = false
      this.#log.info('replica.probe_answered', { pid: proc?.pid ?? null })
    }
    this.#engineVersion = await engine.readVersion({ baseUrl, signal: AbortSignal.timeout(ENGINE_VERSION_TIMEOUT_MS) }).catch(() => null)
    this.#log.info('replica.ready', { pid: proc?.pid ?? null, port, ms: Date.now() - startedAt, engine_version: this.#engineVersion })
    return new ServingEngine({ endpoint: { pool: pool.id, baseUrl, modelName: engine.modelName }, process: proc })
  }

  /** Makes `serving` the engine that takes new tasks, and watches it. */
  #adopt(serving: ServingEngine): void {
    this.#current = serving
    void serving.process?.exited.then((exit) => {
      serving.stopServing(new LlorchError('engine_unavailable', `the engine of pool "${this.pool.id}" exited`))
      if (serving !== this.#current || exit.terminationReason !== null) return
      this.#current = null
      if (this.state !== 'ready') return
      this.#log.warn('replica.exit', { pid: serving.process?.pid ?? null, exit_code: exit.exitCode, signal: exit.signal, ms: exit.durationMs })
      this.#crashed(serving.process?.exitError(exit) ?? new Error('engine exited'))
    })
    this.#watchLiveness(serving)
  }

  #watchLiveness(serving: ServingEngine): void {
    const interval = this.pool.liveness_interval_ms
    if (interval === 0) return
    const url = `${serving.endpoint.baseUrl}${this.pool.health_path}`
    let failures = 0
    const tick = async () => {
      const probe = await probeHealth({ url })
      if (serving !== this.#current || this.state !== 'ready' || !serving.serving) return
      failures = probe.ok ? 0 : failures + 1
      if (failures < this.pool.liveness_failures) {
        serving.livenessTimer = setTimeout(tick, interval)
        return
      }
      this.#log.warn('replica.unhealthy', { pid: serving.process?.pid ?? null, failures })
      this.#stopFailing(
        serving,
        'unhealthy',
        `engine of pool "${this.pool.id}" failed ${failures} health checks in a row (last: ${probe.ok ? 'ok' : probe.detail})`,
      )
    }
    serving.livenessTimer = setTimeout(tick, interval)
  }

  /** A ready engine stopped doing its job (`summary` says how): it takes no more tasks, is stopped, and counts as a crash. */
  #stopFailing(serving: ServingEngine, reason: TerminationReason, summary: string): void {
    this.#current = null
    serving.stopServing(new LlorchError('engine_unavailable', `the engine of pool "${this.pool.id}" stopped serving: ${summary}`))
    const stop = serving.process?.terminate({ reason, graceMs: this.pool.stop_grace_ms })
    if (stop) {
      this.#stopping.add(stop)
      void stop.finally(() => this.#stopping.delete(stop))
    }
    this.#crashed(new Error(summary), serving.process?.tail() ?? '')
  }

  /** A crash (exit, failed start, lost health): → failed, then a restart after a backoff, or the breaker. */
  #crashed(error: unknown, extraTail = ''): void {
    const { crashes, open } = this.#breaker.record(Date.now())
    const summary = error instanceof EngineExitError ? error.summary : messageOf(error)
    const tail = error instanceof EngineExitError ? error.tail : extraTail
    const { max_crashes: maxCrashes, crash_window_ms: windowMs } = this.pool.restart
    if (open) {
      const note = `circuit breaker open after ${crashes} crashes within ${windowMs} ms; no more restarts until a reload`
      this.#transition('failed', clipReason(`${summary}; ${note}`, tail))
      this.#log.error('replica.breaker_open', { crashes, window_ms: windowMs })
      this.emit('breaker-open', { pool: this.pool.id, crashes })
      return
    }
    const policy = { attempt: crashes - 1, initialMs: this.pool.restart.initial_delay_ms, maxMs: this.pool.restart.max_delay_ms }
    const ceilingMs = backoffCeilingMs(policy)
    const delayMs = backoffDelayMs({ ...policy, random: this.#random })
    const note = `restarting in ${delayMs} ms (crash ${crashes} of ${maxCrashes} allowed within ${windowMs} ms)`
    this.#transition('failed', clipReason(`${summary}; ${note}`, tail))
    this.#log.warn('replica.restart_scheduled', { crashes, attempt: policy.attempt, delay_ms: delayMs, ceiling_ms: ceilingMs })
    this.emit('restart', { pool: this.pool.id, attempt: policy.attempt, crashes, delayMs, ceilingMs })
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null
      void this.#enqueue(async () => {
        if (this.state === 'failed' && !this.#breaker.open) await this.#launch(`restart after crash ${crashes}`).catch(() => {})
      })
    }, delayMs)
  }

  /** Lets the tasks on `serving` finish up to `deadlineMs`, aborts the rest, stops its process. */
  #retire(serving: ServingEngine, { deadlineMs, reason }: { deadlineMs: number; reason: TerminationReason }): Promise<void> {
    this.#retiring.add(serving)
    const cutOff = async () => {
      if (await serving.whenIdle(deadlineMs)) return
      this.#log.warn('replica.drain_deadline', { pid: serving.process?.pid ?? null, tasks: serving.busy, deadline_ms: deadlineMs })
      const cut =
        reason === 'shutdown'
          ? `the server is stopping: pool "${this.pool.id}" shut down before the task finished (drain deadline ${deadlineMs} ms)`
          : `pool "${this.pool.id}" was drained before the task finished (deadline ${deadlineMs} ms)`
      serving.stopServing(new LlorchError('engine_unavailable', cut))
      await serving.whenIdle(LEASE_RELEASE_AFTER_ABORT_MS)
    }
    if (serving.retirement !== null) return Promise.race([serving.retirement, cutOff()]).then(() => serving.retirement ?? undefined)
    serving.retirement = (async () => {
      await cutOff()
      serving.stopServing(new LlorchError('engine_unavailable', `the engine of pool "${this.pool.id}" stopped`))
      if (serving.process) {
        const exit = await serving.process.terminate({ reason, graceMs: this.pool.stop_grace_ms })
        this.#log.info('replica.engine_stopped', { pid: serving.process.pid, reason, exit_code: exit.exitCode, signal: exit.signal, ms: exit.durationMs })
      }
      this.#retiring.delete(serving)
    })()
    return serving.retirement
  }
}
