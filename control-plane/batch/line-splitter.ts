/**
 * Splits a file's bytes, read part by part, into its lines (UTF-8, without the newline or a
 * trailing `\r`). A line may span parts; the last line needs no newline.
 */
export class LineSplitter {
  readonly #decoder = new TextDecoder()
  #rest = ''

  /** The lines that `bytes` completes. */
  push(bytes: Uint8Array): string[] {
    const text = this.#rest + this.#decoder.decode(bytes, { stream: true })
    const lines = text.split('\n')
    this.#rest = lines.pop() ?? ''
    return lines.map(withoutCarriageReturn)
  }

  /** The last line, when the file did not end with a newline. */
  end(): string[] {
    const last = this.#rest + this.#decoder.decode()
    this.#rest = ''
    return last === '' ? [] : [withoutCarriageReturn(last)]
  }
}

function withoutCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line
}
