import { MAX_CHUNKS_PER_BATCH } from '../../protocol/index.ts'
import type { LlorchError, Usage } from '../../protocol/index.ts'
import { carriesOutput, mergeChunk } from './chunk-merge.ts'
import type { RawChunk } from './chunk-merge.ts'

export type RelayItem =
  | { kind: 'started' }
  | { kind: 'chunks'; chunks: RawChunk[] }
  | { kind: 'end'; finishReason: string | null; usage: Usage | null }
  | { kind: 'error'; error: LlorchError }

type Terminal = Extract<RelayItem, { kind: 'end' | 'error' }>

export interface ChunkBatcherOptions {
  /** Past this many unsent bytes the producer is asked to pause (the consumer is slow). */
  highWaterBytes: number
  onPressure?: (paused: boolean) => void
}

/**
 * Between an engine stream (push) and a consumer (pull): output goes to the consumer as soon as
 * it asks, and chunks are merged (where that loses nothing) only while the consumer is still busy
 * with the previous batch, so an idle link never holds output back. A chunk that carries nothing
 * but the role waits for the first output, and is dropped if an error comes first, so that the
 * task can still be placed again elsewhere. The first terminal item (end or error) wins; pending
 * output is sent before it.
 */
export class ChunkBatcher {
  readonly #options: ChunkBatcherOptions
  #started = false
  #startedSent = false
  #pending: RawChunk[] = []
  #pendingBytes = 0
  /** Whether a pending chunk shows anything; role-only chunks wait for one that does. */
  #pendingOutput = false
  #terminal: Terminal | null = null
  #wake: (() => void) | null = null
  #paused = false

  constructor(options: ChunkBatcherOptions) {
    this.#options = options
  }

  get finished(): boolean {
    return this.#terminal !== null
  }

  start(): void {
    this.#started = true
    this.#notify()
  }

  /** Adds one chunk; `bytes` is the size of the engine data it came from. */
  push(chunk: RawChunk, bytes: number): void {
    if (this.#terminal !== null) return
    const last = this.#pending.at(-1)
    if (last === undefined || !mergeChunk(last, chunk)) this.#pending.push(chunk)
    this.#pendingBytes += bytes
    this.#pendingOutput ||= carriesOutput(chunk)
    if (!this.#pendingOutput) return
    this.#notify()
    if (!this.#paused && this.#pendingBytes >= this.#options.highWaterBytes) {
      this.#paused = true
      this.#options.onPressure?.(true)
    }
  }

  finish(terminal: Terminal): void {
    if (this.#terminal !== null) return
    this.#terminal = terminal
    if (terminal.kind === 'error' && !this.#pendingOutput) this.#pending = []
    this.#notify()
  }

  async *items(): AsyncGenerator<RelayItem> {
    for (;;) {
      if (this.#started && !this.#startedSent) {
        this.#startedSent = true
        yield { kind: 'started' }
        continue
      }
      if (this.#pending.length > 0 && (this.#pendingOutput || this.#terminal !== null)) {
        yield { kind: 'chunks', chunks: this.#take() }
        continue
      }
      if (this.#terminal !== null) {
        yield this.#terminal
        return
      }
      await new Promise<void>((resolve) => (this.#wake = resolve))
      this.#wake = null
    }
  }

  /** The pending chunks, at most a batch's worth; the rest waits for the next pull. */
  #take(): RawChunk[] {
    if (this.#pending.length > MAX_CHUNKS_PER_BATCH) return this.#pending.splice(0, MAX_CHUNKS_PER_BATCH)
    const chunks = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    this.#pendingOutput = false
    if (this.#paused) {
      this.#paused = false
      this.#options.onPressure?.(false)
    }
    return chunks
  }

  #notify(): void {
    this.#wake?.()
  }
}
