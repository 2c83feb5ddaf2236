import { accessSync, constants, existsSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { DownloadProgress } from '../../protocol/index.ts'
import type { PoolConfig } from '../config/schema.ts'
import type { EngineArchive, HfSource, ModelSource, UrlSource } from '../config/sources.ts'
import { silentLog } from '../log/log.ts'
import type { Log } from '../log/log.ts'
import { unpackArchive } from './archive.ts'
import { CacheLayout, touchRecord, writeRecord } from './cache-layout.ts'
import { blobsOfPool, evictToFit } from './cache-usage.ts'
import { downloadFile, partialBytes } from './download.ts'
import type { Downloaded } from './download.ts'
import { RateMeter } from './download-progress.ts'
import { assertFreeSpace, freeBytes } from './free-space.ts'
import { headHubFile, listHubSnapshot, splitGgufParts } from './hub-client.ts'
import type { HubFile } from './hub-client.ts'
import { sourcesOf } from './pool-sources.ts'
import type { LocalPaths } from './pool-sources.ts'
import { ProvisionError } from './provision-error.ts'
import { fetchSource, statusError } from './source-fetch.ts'

export interface ProvisionerOptions {
  cacheDir: string
  /** `HF_ENDPOINT`, without a trailing slash. */
  hfEndpoint: string
  hfToken: string | null
  maxCacheBytes: number | null
  /** Every pool on the box: eviction keeps what they use. */
  pools: readonly PoolConfig[]
  log?: Log
  retryDelayMs?: number
}

export interface ProvisionOptions {
  /** Ask the source again instead of using the commit recorded last time (a reload). */
  refresh?: boolean
  onProgress?: (progress: DownloadProgress) => void
  signal?: AbortSignal
}

/** One file to fetch into the cache. */
interface Fetch {
  label: string
  dest: string
  url: string
  token: string | null
  etag: string
  sha256: string | null
  size: number | null
  source: string
  files: string[]
  commit: string | null
}

/** The fetch of a file named by its URL and sha256, or none when its blob is in the cache. */
function urlFetches(dest: string, source: { url: string; sha256: string }): Fetch[] {
  if (existsSync(dest)) return []
  const name = urlName(source.url)
  return [
    {
      label: name,
      dest,
      url: source.url,
      token: null,
      etag: source.sha256,
      sha256: source.sha256,
      size: null,
      source: source.url,
      files: [name],
      commit: null,
    },
  ]
}

/** What one source needs: files to fetch, then the step that links them into place. */
interface Plan {
  fetches: Fetch[]
  finish: () => Promise<LocalPaths>
}

interface SharedDownload {
  result: Promise<Downloaded>
  listeners: Set<(bytes: number) => void>
  /** Aborted once every pool waiting for it has given up. */
  controller: AbortController
  waiting: number
}

const urlName = (url: string) => path.posix.basename(new URL(url).pathname).replace(/[^A-Za-z0-9_.+=-]/g, '_') || 'file'

/**
 * Fetches the model and engine a pool names as sources into the cache, once per blob however
 * many pools ask at the same time, and returns their local paths. A source fetched before is
 * used as recorded (the same commit) without asking the network, unless `refresh` says to.
 */
export class Provisioner {
  readonly layout: CacheLayout
  readonly #options: ProvisionerOptions
  readonly #log: Log
  readonly #inFlight = new Map<string, SharedDownload>()

  constructor(options: ProvisionerOptions) {
    this.layout = new CacheLayout(options.cacheDir)
    this.#options = options
    this.#log = options.log ?? silentLog
  }

  /** Fetches what the pool's sources need (nothing when cached) and returns the local paths. */
  async provision(pool: PoolConfig, { refresh = false, onProgress, signal }: ProvisionOptions = {}): Promise<LocalPaths> {
    const { model, binary } = sourcesOf(pool)
    const plans = await Promise.all([model ? this.#planModel(model, refresh, signal) : null, binary ? this.#planArchive(binary) : null])
    const fetches = [...new Map(plans.flatMap((p) => p?.fetches ?? []).map((f) => [f.dest, f])).values()]
    const needed = fetches.filter((f) => !this.#inFlight.has(f.dest)).reduce((sum, f) => sum + Math.max(0, (f.size ?? 0) - partialBytes(f.dest)), 0)
    if (needed > 0) assertFreeSpace({ dir: this.layout.root, needed })
    const total = fetches.every((f) => f.size !== null) ? fetches.reduce((sum, f) => sum + (f.size ?? 0), 0) : null
    const meter = new RateMeter()
    let done = 0
    for (const fetch of fetches) {
      this.#log.info('provision.fetch', { pool: pool.id, file: fetch.label, bytes: fetch.size })
      const report = (bytes: number) => {
        meter.record(done + bytes)
        onProgress?.(meter.progress({ file: fetch.label, done: done + bytes, total }))
      }
      report(0)
      const result = await this.#fetchShared(fetch, report, signal)
      done += result.size
      this.#log.info('provision.fetched', { pool: pool.id, file: fetch.label, bytes: result.size, sha256: result.sha256 })
    }
    const [modelPaths, binaryPaths] = await Promise.all(plans.map((p): Promise<LocalPaths> => p?.finish() ?? Promise.resolve({})))
    for (const blob of blobsOfPool(this.layout, pool)) touchRecord(this.layout, blob)
    if (this.#options.maxCacheBytes !== null) {
      for (const removed of evictToFit(this.layout, { maxBytes: this.#options.maxCacheBytes, pools: this.#options.pools })) {
        this.#log.info('provision.evicted', { blob: removed.blob, bytes: removed.size, source: removed.source })
      }
    }
    return { model: modelPaths?.model, binary: binaryPaths?.binary, env: { ...modelPaths?.env } }
  }

  /**
   * What fetching the pool's sources would download now, asking the sources (HEAD) without
   * downloading, and whether it fits: for `doctor`.
   */
  async survey(
    pool: PoolConfig,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<{ files: Array<{ file: string; size: number | null }>; needed: number; free: number }> {
    const { model, binary } = sourcesOf(pool)
    const plans = await Promise.all([model ? this.#planModel(model, true, signal) : null, binary ? this.#planArchive(binary) : null])
    const files = await Promise.all(
      plans
        .flatMap((p) => p?.fetches ?? [])
        .map(async (f) => {
          if (f.size !== null) return { file: f.label, size: f.size }
          const { response, url } = await fetchSource({ url: f.url, method: 'HEAD', token: f.token, signal })
          if (!response.ok) throw statusError(response.status, url, f.label)
          const length = response.headers.get('content-length')
          return { file: f.label, size: length === null ? null : Number(length) }
        }),
    )
    const needed = files.reduce((sum, f) => sum + (f.size ?? 0), 0)
    return { files, needed, free: freeBytes(this.layout.root) }
  }

  /**
   * Downloads a blob, or joins the download of it already under way for another pool. The
   * download stops only when every pool waiting for it stopped waiting.
   */
  #fetchShared(fetch: Fetch, onBytes: (bytes: number) => void, signal: AbortSignal | undefined): Promise<Downloaded> {
    const shared = this.#inFlight.get(fetch.dest) ?? this.#startDownload(fetch)
    shared.listeners.add(onBytes)
    shared.waiting += 1
    const stopWaiting = () => {
      shared.listeners.delete(onBytes)
      shared.waiting -= 1
      if (shared.waiting === 0) shared.controller.abort()
    }
    if (signal === undefined) return shared.result.finally(() => shared.listeners.delete(onBytes))
    return new Promise<Downloaded>((resolve, reject) => {
      const onAbort = () => {
        stopWaiting()
        reject(new ProvisionError('interrupted', 'the download was interrupted'))
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      shared.result.then(resolve, reject).finally(() => {
        signal.removeEventListener('abort', onAbort)
        shared.listeners.delete(onBytes)
      })
    })
  }

  #startDownload(fetch: Fetch): SharedDownload {
    const listeners = new Set<(bytes: number) => void>()
    const controller = new AbortController()
    const result = downloadFile({
      name: fetch.label,
      url: fetch.url,
      token: fetch.token,
      dest: fetch.dest,
      sha256: fetch.sha256,
      size: fetch.size,
      etag: fetch.etag,
      signal: controller.signal,
      retryDelayMs: this.#options.retryDelayMs,
      onBytes: (bytes) => {
        for (const listener of listeners) listener(bytes)
      },
    }).then((downloaded) => {
      writeRecord(this.layout, {
        blob: path.relative(this.layout.root, fetch.dest),
        size: downloaded.size,
        sha256: downloaded.sha256,
        source: fetch.source,
        files: fetch.files,
        commit: fetch.commit,
        last_used_at: Date.now(),
      })
      return downloaded
    })
    const shared: SharedDownload = { result, listeners, controller, waiting: 0 }
    this.#inFlight.set(fetch.dest, shared)
    result.then(
      () => this.#inFlight.delete(fetch.dest),
      () => this.#inFlight.delete(fetch.dest),
    )
    return shared
  }

  #planModel(source: ModelSource, refresh: boolean, signal: AbortSignal | undefined): Promise<Plan> {
    if ('url' in source) return Promise.resolve(this.#planUrl(source))
    return source.file === undefined ? this.#planSnapshot(source, source.revision, refresh, signal) : this.#planHubFile(source, source.file, refresh, signal)
  }

  #hub(signal: AbortSignal | undefined) {
    return { endpoint: this.#options.hfEndpoint, token: this.#options.hfToken, signal }
  }

  /** Links the files of a commit into its snapshot and records the revision, once they are all fetched. */
  #linkHubFiles(repo: string, revision: string, commit: string, heads: HubFile[]): void {
    for (const head of heads) this.layout.link(path.join(this.layout.snapshotDir(repo, commit), head.file), this.layout.hubBlob(repo, head.etag))
    this.layout.writeRef(repo, revision, commit)
  }

  #fetchOf(head: HubFile): Fetch | null {
    const dest = this.layout.hubBlob(head.repo, head.etag)
    if (existsSync(dest)) return null
    // The token is for the Hub; an LFS redirect to a CDN gets none.
    const token = new URL(head.contentUrl).host === new URL(this.#options.hfEndpoint).host ? this.#options.hfToken : null
    return {
      label: head.file,
      dest,
      url: head.contentUrl,
      token,
      etag: head.etag,
      sha256: head.sha256,
      size: head.size,
      source: head.repo,
      files: [head.file],
      commit: head.commit,
    }
  }

  async #planHubFile(source: HfSource, file: string, refresh: boolean, signal: AbortSignal | undefined): Promise<Plan> {
    const { hf: repo, revision } = source
    const parts = splitGgufParts(file)
    const recorded = refresh ? null : this.layout.recordedCommit(repo, revision)
    const env = this.#hubEnv()
    if (recorded !== null && parts.every((p) => existsSync(path.join(this.layout.snapshotDir(repo, recorded), p)))) {
      return { fetches: [], finish: async () => ({ model: path.join(this.layout.snapshotDir(repo, recorded), file), env }) }
    }
    const first = await headHubFile({ ...this.#hub(signal), repo, revision, file: parts[0] ?? file })
    const rest = await Promise.all(parts.slice(1).map((part) => headHubFile({ ...this.#hub(signal), repo, revision: first.commit, file: part })))
    const heads = [first, ...rest]
    return {
      fetches: heads.flatMap((h) => this.#fetchOf(h) ?? []),
      finish: async () => {
        this.#linkHubFiles(repo, revision, first.commit, heads)
        return { model: path.join(this.layout.snapshotDir(repo, first.commit), file), env }
      },
    }
  }

  async #planSnapshot(source: HfSource, revision: string, refresh: boolean, signal: AbortSignal | undefined): Promise<Plan> {
    const repo = source.hf
    const recorded = refresh ? null : this.layout.recordedCommit(repo, revision)
    const env = this.#hubEnv()
    if (recorded !== null && existsSync(this.layout.completeMarker(repo, recorded))) {
      return { fetches: [], finish: async () => ({ model: this.layout.snapshotDir(repo, recorded), env }) }
    }
    const { commit, files } = await listHubSnapshot({ ...this.#hub(signal), repo, revision })
    const heads = await Promise.all(files.map((file) => headHubFile({ ...this.#hub(signal), repo, revision: commit, file })))
    return {
      fetches: heads.flatMap((h) => this.#fetchOf(h) ?? []),
      finish: async () => {
        this.#linkHubFiles(repo, revision, commit, heads)
        const marker = this.layout.completeMarker(repo, commit)
        mkdirSync(path.dirname(marker), { recursive: true })
        writeFileSync(marker, `${heads.length} files\n`)
        return { model: this.layout.snapshotDir(repo, commit), env }
      },
    }
  }

  /** vLLM and transformers read the cache, and only the cache. */
  #hubEnv(): Record<string, string> {
    return { HF_HUB_CACHE: this.layout.root, HF_HUB_OFFLINE: '1' }
  }

  #planUrl(source: UrlSource): Plan {
    const dest = this.layout.urlBlob(source.sha256)
    const name = urlName(source.url)
    const linkPath = this.layout.urlFile(source.sha256, name)
    return {
      fetches: urlFetches(dest, source),
      finish: async () => {
        this.layout.link(linkPath, dest)
        return { model: linkPath }
      },
    }
  }

  #planArchive(source: EngineArchive): Plan {
    const dest = this.layout.engineBlob(source.sha256)
    const name = urlName(source.url)
    return {
      fetches: urlFetches(dest, source),
      finish: async () => {
        const dir = this.layout.engineDir(source.sha256)
        if (!existsSync(dir)) await unpackArchive({ file: dest, name, dir })
        const binary = path.join(dir, source.path)
        try {
          if (!lstatSync(binary).isFile()) throw new Error('not a file')
          accessSync(binary, constants.X_OK)
        } catch {
          throw new ProvisionError('bad_archive', `${name} has no executable ${source.path} (check binary.path)`)
        }
        return { binary }
      },
    }
  }
}
