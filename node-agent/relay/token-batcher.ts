import type { LlorchError, Usage } from '../../protocol/index.ts'

export type RelayItem =
  | { kind: 'started' }
  | { kind: 'text'; text: string }
  | { kind: 'end'; finishReason: string | null; usage: Usage | null }
  | { kind: 'error'; error: LlorchError }

type Terminal = Extract<RelayItem, { kind: 'end' | 'error' }>

export interface TokenBatcherOptions {
  /** A batch is sent at most this long after its first character arrived. */
  flushIntervalMs: number
  /** A batch is sent as soon as it holds this many characters. */
  flushChars: number
  /** Past this many unsent characters the producer is asked to pause (the consumer is slow). */
  highWaterChars: number
  onPressure?: (paused: boolean) => void
}

/**
 * Between an engine stream (push) and a consumer (pull): text deltas are joined into batches,
 * sent on a short timer or once big enough (the very first text at once), and while the
 * consumer is busy they keep joining.
 * The first terminal item (end or error) wins; pending text is sent before it.
 */
export class TokenBatcher {
  readonly #options: TokenBatcherOptions
  #started = false
  #startedSent = false
  #pending = ''
  #due = false
  /** The first text goes out at once: batching it would add the flush interval to time to first token. */
  #firstTextSent = false
  #terminal: Terminal | null = null
  #timer: NodeJS.Timeout | null = null
  #wake: (() => void) | null = null
  #paused = false

  constructor(options: TokenBatcherOptions) {
    this.#options = options
  }

  get finished(): boolean {
    return this.#terminal !== null
  }

  start(): void {
    this.#started = true
    this.#notify()
  }

  push(text: string): void {
    if (this.#terminal !== null || text === '') return
    this.#pending += text
    if (!this.#firstTextSent || this.#pending.length >= this.#options.flushChars) this.#flushNow()
    else this.#timer ??= setTimeout(() => this.#flushNow(), this.#options.flushIntervalMs)
    if (!this.#paused && this.#pending.length >= this.#options.highWaterChars) {
      this.#paused = true
      this.#options.onPressure?.(true)
    }
  }

  finish(terminal: Terminal): void {
    if (this.#terminal !== null) return
    this.#terminal = terminal
    this.#notify()
  }

  async *items(): AsyncGenerator<RelayItem> {
    try {
      for (;;) {
        if (this.#started && !this.#startedSent) {
          this.#startedSent = true
          yield { kind: 'started' }
          continue
        }
        if (this.#pending !== '' && (this.#due || this.#terminal !== null)) {
          yield { kind: 'text', text: this.#take() }
          continue
        }
        if (this.#terminal !== null) {
          yield this.#terminal
          return
        }
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = null
      }
    } finally {
      this.#clearTimer()
    }
  }

  #take(): string {
    const text = this.#pending
    this.#pending = ''
    this.#firstTextSent = true
    this.#due = false
    this.#clearTimer()
    if (this.#paused) {
      this.#paused = false
      this.#options.onPressure?.(false)
    }
    return text
  }

  #flushNow(): void {
    this.#clearTimer()
    this.#due = true
    this.#notify()
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  #notify(): void {
    this.#wake?.()
  }
}
