import { z } from 'zod'
import { FILE_MAX_BYTES, FILE_MAX_LINES, FilePurpose, FileStatus } from '../../protocol/index.ts'
import type { OpenAIFile } from '../../protocol/index.ts'
import { countStorageWrite } from '../runtime/cost-counts.ts'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow } from '../storage/sql-rows.ts'

/** Bytes per stored part of a file: well under the 2 MB a Durable Object SQLite row may hold. */
export const FILE_PART_BYTES = 1024 * 1024

const NEWLINE = 0x0a

/** A file's record, beside its parts. */
export const StoredFile = z.object({
  id: z.string(),
  apiKeyId: z.string(),
  filename: z.string(),
  purpose: FilePurpose,
  status: FileStatus,
  createdAt: z.number(),
  /** Null: kept until deleted. */
  expiresAt: z.number().nullable(),
  bytes: z.int().nonnegative(),
  /** Newlines so far, and whether the last byte was one: the line count is known without reading the parts. */
  newlines: z.int().nonnegative(),
  endsWithNewline: z.boolean(),
  parts: z.int().nonnegative(),
})
export type StoredFile = z.infer<typeof StoredFile>

export type NewFile = Pick<StoredFile, 'id' | 'apiKeyId' | 'filename' | 'purpose' | 'createdAt'>

/** Why an append was refused: the file went past one of its limits. */
export type AppendRefusal = { limit: 'bytes'; max: number } | { limit: 'lines'; max: number }

/** Lines in a file: a last line without a newline counts too. */
export function linesOf(file: Pick<StoredFile, 'bytes' | 'newlines' | 'endsWithNewline'>): number {
  return file.newlines + (file.bytes > 0 && !file.endsWithNewline ? 1 : 0)
}

function newlinesIn(bytes: Uint8Array): number {
  let count = 0
  for (const byte of bytes) if (byte === NEWLINE) count += 1
  return count
}

export function fileView(file: StoredFile): OpenAIFile {
  const seconds = (ms: number) => Math.floor(ms / 1000)
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: seconds(file.createdAt),
    expires_at: file.expiresAt === null ? null : seconds(file.expiresAt),
    filename: file.filename,
    purpose: file.purpose,
    status: file.status,
    status_details: null,
  }
}

const RECORD_KEY = 'file'
const Part = z.object({ data: z.instanceof(ArrayBuffer) })

/** One file in its object's storage: the record in key-value storage, the bytes in SQLite rows of `FILE_PART_BYTES`. */
export class FileStore {
  readonly #sql: SqlExec
  readonly #kv: SyncKvStorage

  constructor(sql: SqlExec, kv: SyncKvStorage) {
    this.#sql = sql
    this.#kv = kv
    sql.exec('CREATE TABLE IF NOT EXISTS parts (part INTEGER PRIMARY KEY, data BLOB NOT NULL)')
  }

  read(): StoredFile | null {
    const stored: unknown = this.#kv.get(RECORD_KEY)
    return stored === undefined ? null : StoredFile.parse(stored)
  }

  write(file: StoredFile): void {
    countStorageWrite()
    this.#kv.put(RECORD_KEY, file)
  }

  /** A new, empty file; whatever was here before (an output file written again after a restart) is dropped. */
  begin(meta: NewFile): StoredFile {
    this.#sql.exec('DELETE FROM parts')
    const file: StoredFile = { ...meta, status: 'uploaded', expiresAt: null, bytes: 0, newlines: 0, endsWithNewline: false, parts: 0 }
    this.write(file)
    return file
  }

  /**
   * Adds bytes at the end, in parts of at most `FILE_PART_BYTES`; an upload is refused, and
   * nothing kept, past the file limits (a batch's output has as many lines as its input).
   */
  append(file: StoredFile, bytes: Uint8Array): AppendRefusal | null {
    const uploaded = file.purpose === 'batch'
    if (uploaded && file.bytes + bytes.byteLength > FILE_MAX_BYTES) return { limit: 'bytes', max: FILE_MAX_BYTES }
    const newlines = file.newlines + newlinesIn(bytes)
    const endsWithNewline = bytes.byteLength > 0 ? bytes[bytes.byteLength - 1] === NEWLINE : file.endsWithNewline
    const next = { ...file, bytes: file.bytes + bytes.byteLength, newlines, endsWithNewline }
    if (uploaded && linesOf(next) > FILE_MAX_LINES) return { limit: 'lines', max: FILE_MAX_LINES }
    let parts = file.parts
    for (let offset = 0; offset < bytes.byteLength; offset += FILE_PART_BYTES) {
      this.#sql.exec('INSERT INTO parts (part, data) VALUES (?, ?)', parts, bytes.slice(offset, offset + FILE_PART_BYTES).buffer)
      parts += 1
    }
    Object.assign(file, next, { parts })
    this.write(file)
    return null
  }

  part(index: number): Uint8Array | null {
    const row = sqlRow(this.#sql, Part, 'SELECT data FROM parts WHERE part = ?', index)
    return row ? new Uint8Array(row.data) : null
  }

  clear(): void {
    this.#sql.exec('DELETE FROM parts')
    this.#kv.delete(RECORD_KEY)
  }
}
