import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { ProvisionError } from './provision-error.ts'
import { statusError, streamSource } from './source-fetch.ts'

/** Tries of one file before a cut connection fails the download; each try resumes where the last stopped. */
export const DOWNLOAD_ATTEMPTS = 5
/** Before the next try after a cut connection. */
export const DOWNLOAD_RETRY_DELAY_MS = 500

export interface DownloadRequest {
  /** The file's name, for messages. */
  name: string
  url: string
  token: string | null
  /** Where the finished file goes; the bytes collect in `<dest>.incomplete` until then. */
  dest: string
  /** The sha256 the bytes must have, when known. */
  sha256: string | null
  size: number | null
  /** What the source calls this version of the bytes; a partial file of another version is started over. */
  etag: string
  /** Called with the bytes so far, often. */
  onBytes?: (done: number) => void
  signal?: AbortSignal
  retryDelayMs?: number
}

export interface Downloaded {
  sha256: string
  size: number
}

const partialPath = (dest: string) => `${dest}.incomplete`
const partialMetaPath = (dest: string) => `${dest}.incomplete.json`

function removePartial(dest: string): void {
  rmSync(partialPath(dest), { force: true })
  rmSync(partialMetaPath(dest), { force: true })
}

/** The bytes already fetched of this version of the file, and their hash so far. */
async function resumePoint(dest: string, etag: string): Promise<{ offset: number; hash: Hash }> {
  const hash = createHash('sha256')
  const partial = partialPath(dest)
  let recorded: string | null = null
  try {
    recorded = String(Reflect.get(Object(JSON.parse(readFileSync(partialMetaPath(dest), 'utf8'))), 'etag'))
  } catch {
    recorded = null
  }
  if (!existsSync(partial) || recorded !== etag) {
    removePartial(dest)
    writeFileSync(partialMetaPath(dest), JSON.stringify({ etag }))
    return { offset: 0, hash }
  }
  for await (const chunk of createReadStream(partial)) hash.update(chunk)
  return { offset: statSync(partial).size, hash }
}

/** One GET from `offset`; resolves at the end of the body, rejects when it is cut. */
async function fetchFrom(request: DownloadRequest, start: { offset: number; hash: Hash }): Promise<{ offset: number; hash: Hash }> {
  let { offset, hash } = start
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) }
  const { response, url } = await streamSource({ url: request.url, headers, token: request.token, signal: request.signal })
  const status = response.statusCode ?? 0
  if (status === 416) {
    // The partial file is as long as the file or longer: it is of no use.
    response.resume()
    removePartial(request.dest)
    writeFileSync(partialMetaPath(request.dest), JSON.stringify({ etag: request.etag }))
    return fetchFrom(request, { offset: 0, hash: createHash('sha256') })
  }
  if (status < 200 || status > 299) {
    response.resume()
    throw statusError(status, url, request.name)
  }
  if (offset > 0 && status !== 206) {
    // The server sent the whole file: start over.
    offset = 0
    hash = createHash('sha256')
  }
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk)
      offset += chunk.length
      request.onBytes?.(offset)
      done(null, chunk)
    },
  })
  // A cut ends the body like its end would, so every byte that arrived is written before the
  // next try reads its resume point from the file's size.
  let cut: unknown = null
  async function* received() {
    try {
      for await (const chunk of response) yield chunk
    } catch (error) {
      cut = error
    }
  }
  const cutAt = (cause: unknown) => new ProvisionError('transfer_cut', `the transfer of ${request.name} was cut at ${offset} bytes`, { cause })
  const out = createWriteStream(partialPath(request.dest), { flags: offset > 0 ? 'a' : 'w' })
  try {
    await pipeline(received, count, out, { signal: request.signal })
  } catch (error) {
    if (request.signal?.aborted) throw new ProvisionError('interrupted', 'the download was interrupted', { cause: error })
    throw cutAt(error)
  }
  if (cut !== null) throw cutAt(cut)
  return { offset, hash }
}

/**
 * Fetches a file to `dest`: into `<dest>.incomplete`, resuming with `Range` what an earlier try
 * or agent left there (a 416 or another version starts over), hashing while streaming. A
 * sha256 or size other than expected deletes the bytes and fails with both values.
 */
export async function downloadFile(request: DownloadRequest): Promise<Downloaded> {
  mkdirSync(path.dirname(request.dest), { recursive: true })
  let lastError: unknown = null
  for (let attempt = 0; attempt < DOWNLOAD_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(request.retryDelayMs ?? DOWNLOAD_RETRY_DELAY_MS, undefined, { signal: request.signal }).catch(() => {})
    if (request.signal?.aborted) throw new ProvisionError('interrupted', 'the download was interrupted')
    let result: { offset: number; hash: Hash }
    try {
      result = await fetchFrom(request, await resumePoint(request.dest, request.etag))
    } catch (error) {
      if (error instanceof ProvisionError && error.code === 'transfer_cut') {
        lastError = error
        continue
      }
      throw error
    }
    const sha256 = result.hash.digest('hex')
    const name = request.name
    if (request.size !== null && result.offset !== request.size) {
      removePartial(request.dest)
      throw new ProvisionError('size_mismatch', `${name}: expected ${request.size} bytes, got ${result.offset}; the file was deleted`)
    }
    if (request.sha256 !== null && sha256 !== request.sha256) {
      removePartial(request.dest)
      throw new ProvisionError('checksum_mismatch', `${name}: sha256 mismatch, expected ${request.sha256}, got ${sha256}; the file was deleted`)
    }
    renameSync(partialPath(request.dest), request.dest)
    rmSync(partialMetaPath(request.dest), { force: true })
    return { sha256, size: result.offset }
  }
  throw lastError instanceof Error ? lastError : new ProvisionError('source_unreachable', String(lastError))
}

/** Bytes of `dest` already fetched by an earlier try, for the free-space check. */
export function partialBytes(dest: string): number {
  try {
    return statSync(partialPath(dest)).size
  } catch {
    return 0
  }
}
