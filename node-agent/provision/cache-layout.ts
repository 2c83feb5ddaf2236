import { createHash } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'

/**
 * The cache on the box, laid out as the Hugging Face hub cache so vLLM and transformers read it
 * offline (`HF_HUB_CACHE` pointing here):
 *
 *   models--org--repo/blobs/<etag>                  the bytes (etag: sha256 for LFS files)
 *   models--org--repo/snapshots/<commit>/<file>     links to ../../blobs/<etag>
 *   models--org--repo/refs/<revision>               the commit the revision resolved to
 *   downloads/blobs/<sha256>, downloads/snapshots/<sha256>/<name>   files from `url` sources
 *   engines/blobs/<sha256>, engines/unpacked/<sha256>/              engine archives and their contents
 *   .llorch/records/…json                           what the agent knows of each blob (source, last use)
 *   .llorch/complete/…                              snapshots fetched in full
 */
export class CacheLayout {
  readonly root: string

  constructor(root: string) {
    this.root = root
  }

  repoDir(repo: string): string {
    return path.join(this.root, `models--${repo.replace('/', '--')}`)
  }

  hubBlob(repo: string, etag: string): string {
    return path.join(this.repoDir(repo), 'blobs', etag)
  }

  snapshotDir(repo: string, commit: string): string {
    return path.join(this.repoDir(repo), 'snapshots', commit)
  }

  refFile(repo: string, revision: string): string {
    return path.join(this.repoDir(repo), 'refs', revision)
  }

  urlBlob(sha256: string): string {
    return path.join(this.root, 'downloads', 'blobs', sha256)
  }

  urlFile(sha256: string, name: string): string {
    return path.join(this.root, 'downloads', 'snapshots', sha256, name)
  }

  engineBlob(sha256: string): string {
    return path.join(this.root, 'engines', 'blobs', sha256)
  }

  engineDir(sha256: string): string {
    return path.join(this.root, 'engines', 'unpacked', sha256)
  }

  completeMarker(repo: string, commit: string): string {
    return path.join(this.root, '.llorch', 'complete', `${path.basename(this.repoDir(repo))}--${commit}`)
  }

  recordFile(blob: string): string {
    const key = createHash('sha256').update(path.relative(this.root, blob)).digest('hex').slice(0, 32)
    return path.join(this.root, '.llorch', 'records', `${key}.json`)
  }

  /** The commit a revision resolved to last time, or the revision itself when it is a commit. */
  recordedCommit(repo: string, revision: string): string | null {
    if (/^[0-9a-f]{40}$/.test(revision)) return revision
    try {
      return readFileSync(this.refFile(repo, revision), 'utf8').trim() || null
    } catch {
      return null
    }
  }

  writeRef(repo: string, revision: string, commit: string): void {
    if (revision === commit) return
    const file = this.refFile(repo, revision)
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, commit)
  }

  /** Points `linkPath` at `blob` with a relative link, as the hub cache does. */
  link(linkPath: string, blob: string): void {
    mkdirSync(path.dirname(linkPath), { recursive: true })
    rmSync(linkPath, { force: true })
    symlinkSync(path.relative(path.dirname(linkPath), blob), linkPath)
  }
}

/** What the agent records of one blob: shown by `llorch-agent models`, used by eviction and `validate`. */
export const BlobRecord = z.object({
  /** The blob, relative to the cache root. */
  blob: z.string(),
  size: z.number().nonnegative(),
  sha256: z.string(),
  /** `org/repo` or the URL it came from. */
  source: z.string(),
  /** The file names it has in snapshots. */
  files: z.array(z.string()),
  commit: z.string().nullable(),
  last_used_at: z.number(),
})
export type BlobRecord = z.infer<typeof BlobRecord>

export function writeRecord(layout: CacheLayout, record: BlobRecord): void {
  const file = layout.recordFile(path.join(layout.root, record.blob))
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(record))
}

export function readRecord(layout: CacheLayout, blob: string): BlobRecord | null {
  try {
    return BlobRecord.parse(JSON.parse(readFileSync(layout.recordFile(blob), 'utf8')))
  } catch {
    return null
  }
}

export function listRecords(layout: CacheLayout): BlobRecord[] {
  const dir = path.join(layout.root, '.llorch', 'records')
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    try {
      return [BlobRecord.parse(JSON.parse(readFileSync(path.join(dir, name), 'utf8')))]
    } catch {
      return []
    }
  })
}

export function touchRecord(layout: CacheLayout, blob: string, now = Date.now()): void {
  const record = readRecord(layout, blob)
  if (record) writeRecord(layout, { ...record, last_used_at: now })
}

/** Every link under `dir` (recursively) with the blob it resolves to. */
export function linksUnder(dir: string): Array<{ link: string; blob: string }> {
  if (!existsSync(dir)) return []
  const found: Array<{ link: string; blob: string }> = []
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name)
    if (lstatSync(full).isSymbolicLink()) found.push({ link: full, blob: path.resolve(path.dirname(full), readlinkSync(full)) })
  }
  return found
}
