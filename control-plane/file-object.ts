import { DurableObject } from 'cloudflare:workers'
import { FILE_MAX_BYTES, FILE_MAX_LINES, refusal } from '../protocol/index.ts'
import type { FileDeleted, OpenAIFile } from '../protocol/index.ts'
import type { FileSummary, ObjectResult } from './batch/batch-calls.ts'
import { FileStore, fileView, linesOf } from './batch/file-store.ts'
import type { NewFile, StoredFile } from './batch/file-store.ts'
import { keyListing } from './batch/listing-store.ts'
import { countedSql } from './storage/counted-sql.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import type { Bindings } from './runtime/env.ts'
import { logEvent } from './runtime/log.ts'

/** A file still being written this long after it began was abandoned (its upload broke off): its parts are dropped. */
export const UPLOAD_ABANDONED_MS = 3_600_000

const notFound = (fileId: string) => refusal('not_found', `no file "${fileId}" for this API key`, { param: 'file_id' })

/**
 * One file of `/v1/files`, named by its id: its record and its bytes in parts. An upload is
 * written part by part (`begin`, `append`, `seal`) and listed once sealed; an expired file is
 * deleted by its alarm and reads as missing from then on.
 */
export class FileObject extends DurableObject<Bindings> {
  readonly #store: FileStore

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#store = new FileStore(countedSql(ctx.storage.sql), ctx.storage.kv)
  }

  /** Starts the file empty: an upload, or a batch's output written (again). */
  begin(meta: NewFile): Promise<void> {
    return this.#guard('begin', async () => {
      this.#store.begin(meta)
      await this.ctx.storage.setAlarm(meta.createdAt + UPLOAD_ABANDONED_MS)
    })
  }

  /** Adds bytes at the end; past 200 MB or 50,000 lines the upload is refused and the file dropped. */
  append(bytes: Uint8Array): Promise<ObjectResult<null>> {
    return this.#guard('append', () => {
      const file = this.#store.read()
      if (!file || file.status !== 'uploaded') return refusal('conflict', 'the file is not being written')
      const refused = this.#store.append(file, bytes)
      if (!refused) return { ok: true, value: null }
      this.#store.clear()
      return refused.limit === 'bytes'
        ? refusal('payload_too_large', `the file exceeds ${FILE_MAX_BYTES} bytes`, { param: 'file' })
        : refusal('invalid_request', `the file has more than ${FILE_MAX_LINES} lines`, { param: 'file' })
    })
  }

  /** The file is whole: it is listed for its key and can be read, until `expiresAt` when one is given. */
  seal({ expiresAt }: { expiresAt: number | null }): Promise<ObjectResult<OpenAIFile>> {
    return this.#guard('seal', async () => {
      const file = this.#store.read()
      if (!file || file.status !== 'uploaded') return refusal('conflict', 'the file is not being written')
      file.status = 'processed'
      file.expiresAt = expiresAt
      this.#store.write(file)
      const listing = this.env.LISTINGS.getByName(keyListing(file.apiKeyId))
      await listing.add({ kind: 'file', id: file.id, apiKeyId: file.apiKeyId, tag: file.purpose, createdAt: file.createdAt })
      if (file.expiresAt !== null) await this.ctx.storage.setAlarm(file.expiresAt)
      else await this.ctx.storage.deleteAlarm()
      return { ok: true, value: fileView(file) }
    })
  }

  view({ apiKeyId }: { apiKeyId: string }): Promise<ObjectResult<OpenAIFile>> {
    return this.#guard('view', () => {
      const file = this.#owned(apiKeyId)
      return file ? { ok: true, value: fileView(file) } : notFound(this.#fileId)
    })
  }

  /** What a batch needs to read the file, for the key that owns it. */
  summary({ apiKeyId }: { apiKeyId: string }): Promise<ObjectResult<FileSummary>> {
    return this.#guard('summary', () => {
      const file = this.#owned(apiKeyId)
      return file ? { ok: true, value: { purpose: file.purpose, lines: linesOf(file), parts: file.parts } } : notFound(this.#fileId)
    })
  }

  /** One part of the content, in order from 0; null past the last. */
  part({ apiKeyId, index }: { apiKeyId: string; index: number }): Promise<ObjectResult<Uint8Array | null>> {
    return this.#guard('part', () => {
      const file = this.#owned(apiKeyId)
      if (!file) return notFound(this.#fileId)
      return { ok: true, value: index < file.parts ? this.#store.part(index) : null }
    })
  }

  remove({ apiKeyId }: { apiKeyId: string }): Promise<ObjectResult<FileDeleted>> {
    return this.#guard('remove', async () => {
      const file = this.#owned(apiKeyId)
      if (!file) return notFound(this.#fileId)
      await this.#drop(file)
      return { ok: true, value: { id: file.id, object: 'file', deleted: true } }
    })
  }

  /** A file being written that never was sealed: dropped. */
  discard(): Promise<void> {
    return this.#guard('discard', () => {
      const file = this.#store.read()
      if (file?.status === 'uploaded') this.#store.clear()
    })
  }

  /** The file expired, or its upload was abandoned. */
  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      const file = this.#store.read()
      if (file?.status === 'uploaded') {
        logEvent('file.upload_abandoned', { file: file.id, key: file.apiKeyId, bytes: file.bytes })
        return this.#store.clear()
      }
      if (!file || file.expiresAt === null) return
      if (Date.now() < file.expiresAt) return this.ctx.storage.setAlarm(file.expiresAt)
      logEvent('file.expired', { file: file.id, key: file.apiKeyId })
      await this.#drop(file)
    })
  }

  get #fileId(): string {
    return this.ctx.id.name ?? ''
  }

  /** The sealed file, if `apiKeyId` made it and it has not expired; any other is as unknown as a missing one. */
  #owned(apiKeyId: string): StoredFile | null {
    const file = this.#store.read()
    if (!file || file.apiKeyId !== apiKeyId || file.status !== 'processed') return null
    if (file.expiresAt !== null && Date.now() >= file.expiresAt) return null
    return file
  }

  async #drop(file: StoredFile): Promise<void> {
    this.#store.clear()
    await this.env.LISTINGS.getByName(keyListing(file.apiKeyId)).remove('file', file.id)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'FileObject', name: this.ctx.id.name, method }, work)
  }
}
