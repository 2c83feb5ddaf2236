import { LlorchError } from '../../protocol/index.ts'

/** Longest header block of one part; a longer one is not a form an OpenAI client sends. */
const MAX_PART_HEADER_BYTES = 16 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const CRLF = encoder.encode('\r\n')
const HEADER_END = encoder.encode('\r\n\r\n')
const DASHES = encoder.encode('--')

/** One part of a form: its field name and, for a file, the file's name. */
export interface FormPart {
  name: string
  filename: string | null
}

const malformed = (why: string) => new LlorchError('invalid_request', `request body is not valid multipart/form-data: ${why}`)

/** Where `pattern` starts in `bytes` at or after `from`, or -1. */
function indexOf(bytes: Uint8Array, pattern: Uint8Array, from = 0): number {
  const first = pattern[0]
  for (let at = bytes.indexOf(first ?? 0, from); at >= 0 && at <= bytes.length - pattern.length; at = bytes.indexOf(first ?? 0, at + 1)) {
    let matches = true
    for (let i = 1; i < pattern.length && matches; i += 1) matches = bytes[at + i] === pattern[i]
    if (matches) return at
  }
  return -1
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b
  const joined = new Uint8Array(a.length + b.length)
  joined.set(a)
  joined.set(b, a.length)
  return joined
}

/** The boundary a `Content-Type: multipart/form-data; boundary=…` header names. */
export function boundaryOf(contentType: string | undefined): string {
  const match = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? '')
  const boundary = match?.[1] ?? match?.[2]
  if (!boundary) throw new LlorchError('invalid_request', 'request body must be multipart/form-data with a boundary, a `file` and a `purpose`')
  return boundary
}

function partOf(headers: string): FormPart {
  const disposition = headers.split('\r\n').find((line) => /^content-disposition:/i.test(line))
  const name = disposition && /;\s*name="([^"]*)"/i.exec(disposition)?.[1]
  if (name === undefined || name === '') throw malformed('a part has no Content-Disposition name')
  const filename = disposition && /;\s*filename="([^"]*)"/i.exec(disposition)?.[1]
  return { name, filename: filename ?? null }
}

/**
 * Reads a multipart/form-data body as it arrives, without holding it whole: the parts one after
 * the other, and each part's bytes as a stream (`data`) or, for a small field, as text. A part's
 * data must be read (or skipped) before the next part is asked for.
 */
export class MultipartReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  /** `\r\n--boundary`: what ends every part's data (the body's first one is read without its CRLF). */
  readonly #delimiter: Uint8Array
  #buffer: Uint8Array
  #done = false

  constructor(body: ReadableStream<Uint8Array>, boundary: string) {
    this.#reader = body.getReader()
    this.#delimiter = encoder.encode(`\r\n--${boundary}`)
    // The body opens with `--boundary`; a CRLF before it makes the first delimiter like the others.
    this.#buffer = CRLF
  }

  /** The next part, or null after the last. */
  async next(): Promise<FormPart | null> {
    const at = await this.#find(this.#delimiter)
    if (at < 0) throw malformed('the closing boundary is missing')
    this.#buffer = this.#buffer.subarray(at + this.#delimiter.length)
    await this.#fill(2)
    if (indexOf(this.#buffer.subarray(0, 2), DASHES) === 0) return null
    const headerEnd = await this.#find(HEADER_END, MAX_PART_HEADER_BYTES)
    if (headerEnd < 0) throw malformed(`a part's headers are missing or longer than ${MAX_PART_HEADER_BYTES} bytes`)
    const headers = decoder.decode(this.#buffer.subarray(2, headerEnd))
    this.#buffer = this.#buffer.subarray(headerEnd + HEADER_END.length)
    return partOf(headers)
  }

  /** The current part's bytes, as they arrive. */
  async *data(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const at = indexOf(this.#buffer, this.#delimiter)
      if (at >= 0) {
        if (at > 0) yield this.#buffer.slice(0, at)
        this.#buffer = this.#buffer.subarray(at)
        return
      }
      // Keep what could be the start of a delimiter split across reads.
      const keep = Math.min(this.#buffer.length, this.#delimiter.length - 1)
      if (this.#buffer.length > keep) yield this.#buffer.slice(0, this.#buffer.length - keep)
      this.#buffer = this.#buffer.subarray(this.#buffer.length - keep)
      if (!(await this.#read())) throw malformed('the body ended inside a part')
    }
  }

  /** The current part as text, refused past `maxBytes`. */
  async text(maxBytes: number): Promise<string> {
    let bytes: Uint8Array = new Uint8Array(0)
    for await (const chunk of this.data()) {
      bytes = concat(bytes, chunk)
      if (bytes.length > maxBytes) throw malformed(`a form field is longer than ${maxBytes} bytes`)
    }
    return decoder.decode(bytes)
  }

  /** Where `pattern` is in the buffer, reading on until it is or `limit` bytes are held; -1 if never. */
  async #find(pattern: Uint8Array, limit = Number.POSITIVE_INFINITY): Promise<number> {
    for (;;) {
      const at = indexOf(this.#buffer, pattern)
      if (at >= 0) return at
      if (this.#buffer.length > limit || !(await this.#read())) return -1
    }
  }

  async #fill(bytes: number): Promise<void> {
    while (this.#buffer.length < bytes) if (!(await this.#read())) throw malformed('the body ended after a boundary')
  }

  async #read(): Promise<boolean> {
    if (this.#done) return false
    const { value, done } = await this.#reader.read()
    if (done) {
      this.#done = true
      return false
    }
    this.#buffer = concat(this.#buffer, value)
    return true
  }
}
