import { LlorchError } from '../../protocol/index.ts'
import type { MissedDeadline } from '../../protocol/index.ts'
import type { EngineProcess } from '../process/engine-process.ts'
import { HangWatch } from './hang-watch.ts'

/** Where a ready engine takes requests, and the `model` it expects in them. */
export interface EngineEndpoint {
  pool: string
  baseUrl: string
  modelName: string
}

/** One running task's hold on a slot of a serving engine. */
export interface SlotLease {
  readonly endpoint: EngineEndpoint
  /** Aborted (with a `LlorchError`) when the engine stops serving before the task ends. */
  readonly signal: AbortSignal
  /** Gives the slot back; safe to call more than once. */
  release(): void
  /** The task ended served: its engine answers. */
  served(): void
  /** The task was stopped for missing `deadline`; answers why its engine counts as hung once it does (see `HangWatch`). */
  missed(deadline: MissedDeadline): string | null
}

/**
 * One engine instance that serves a replica: a process the agent spawned, or a server it only
 * uses. A replica has one current serving engine, plus old ones finishing their tasks after a
 * reload. Tracks the slot leases taken on it.
 */
export class ServingEngine {
  readonly endpoint: EngineEndpoint
  readonly process: EngineProcess | null
  readonly #leases = new Set<SlotLease>()
  readonly #hangs = new HangWatch()
  readonly #gone = new AbortController()
  #idleWaiters: (() => void)[] = []
  /** Set once it is being retired, so a second drain joins the first. */
  retirement: Promise<void> | null = null
  livenessTimer: NodeJS.Timeout | null = null

  constructor({ endpoint, process }: { endpoint: EngineEndpoint; process: EngineProcess | null }) {
    this.endpoint = endpoint
    this.process = process
  }

  get busy(): number {
    return this.#leases.size
  }

  get serving(): boolean {
    return !this.#gone.signal.aborted
  }

  acquire(): SlotLease {
    if (!this.serving) throw new LlorchError('engine_unavailable', `the engine of pool "${this.endpoint.pool}" no longer serves`)
    let released = false
    const lease: SlotLease = {
      endpoint: this.endpoint,
      signal: this.#gone.signal,
      release: () => {
        if (released) return
        released = true
        this.#leases.delete(lease)
        if (this.#leases.size === 0) for (const wake of this.#idleWaiters.splice(0)) wake()
      },
      served: () => this.#hangs.served(),
      missed: (deadline) => this.#hangs.missed(deadline),
    }
    this.#leases.add(lease)
    return lease
  }

  /** Aborts every lease's signal: the engine is gone or must stop now. */
  stopServing(reason: LlorchError): void {
    if (this.livenessTimer) clearTimeout(this.livenessTimer)
    this.livenessTimer = null
    if (!this.#gone.signal.aborted) this.#gone.abort(reason)
  }

  /** Resolves true once no lease is held, or false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.#leases.size === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== wake)
        resolve(false)
      }, timeoutMs)
      this.#idleWaiters.push(wake)
    })
  }
}
