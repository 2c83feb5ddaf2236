/** Longest line kept; longer ones are cut and marked, so one runaway line cannot fill memory. */
export const RING_BUFFER_MAX_LINE_CHARS = 2_000

/**
 * Keeps the last `maxLines` lines written to it, for the log tail reported when an engine fails.
 * Text arrives in arbitrary chunks; a line is complete at `\n`.
 */
export class LineRingBuffer {
  readonly maxLines: number
  readonly #lines: string[] = []
  #next = 0
  #partial = ''

  constructor({ maxLines }: { maxLines: number }) {
    if (!Number.isInteger(maxLines) || maxLines < 1) {
      throw new RangeError(`maxLines must be a positive integer, got ${String(maxLines)}`)
    }
    this.maxLines = maxLines
  }

  write(chunk: string): void {
    const parts = (this.#partial + chunk).split('\n')
    this.#partial = clip(parts.pop() ?? '')
    for (const line of parts) this.#push(clip(line.replace(/\r$/, '')))
  }

  /** The last `lines` lines, oldest first, including an unterminated last line. */
  tail(lines = this.maxLines): string {
    const ordered = [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)]
    if (this.#partial !== '') ordered.push(this.#partial)
    return ordered.slice(-lines).join('\n')
  }

  #push(line: string): void {
    if (this.#lines.length < this.maxLines) {
      this.#lines.push(line)
      return
    }
    this.#lines[this.#next] = line
    this.#next = (this.#next + 1) % this.maxLines
  }
}

function clip(line: string): string {
  return line.length <= RING_BUFFER_MAX_LINE_CHARS ? line : `${line.slice(0, RING_BUFFER_MAX_LINE_CHARS)}… [line cut]`
}
