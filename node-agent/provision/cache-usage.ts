import { existsSync, lstatSync, readlinkSync, rmSync } from 'node:fs'
import path from 'node:path'
import type { PoolConfig } from '../config/schema.ts'
import type { ModelSource } from '../config/sources.ts'
import { CacheLayout, linksUnder, listRecords } from './cache-layout.ts'
import type { BlobRecord } from './cache-layout.ts'
import { splitGgufParts } from './hub-client.ts'
import { sourcesOf } from './pool-sources.ts'

function linkTarget(link: string): string | null {
  try {
    return lstatSync(link).isSymbolicLink() ? path.resolve(path.dirname(link), readlinkSync(link)) : null
  } catch {
    return null
  }
}

function blobsOfModel(layout: CacheLayout, source: ModelSource): string[] {
  if ('url' in source) return [layout.urlBlob(source.sha256)]
  const commit = layout.recordedCommit(source.hf, source.revision)
  if (commit === null) return []
  const snapshot = layout.snapshotDir(source.hf, commit)
  if (source.file === undefined) return linksUnder(snapshot).map((l) => l.blob)
  return splitGgufParts(source.file).flatMap((part) => linkTarget(path.join(snapshot, part)) ?? [])
}

/** The blobs in the cache that a pool's sources resolve to, as last fetched (no network). */
export function blobsOfPool(layout: CacheLayout, pool: PoolConfig): string[] {
  const { model, binary } = sourcesOf(pool)
  return [...(model ? blobsOfModel(layout, model) : []), ...(binary ? [layout.engineBlob(binary.sha256)] : [])]
}

/** Each cached blob with the ids of the configured pools that use it. */
export function poolsByBlob(layout: CacheLayout, pools: readonly PoolConfig[]): Map<string, string[]> {
  const users = new Map<string, string[]>()
  for (const pool of pools) for (const blob of blobsOfPool(layout, pool)) users.set(blob, [...(users.get(blob) ?? []), pool.id])
  return users
}

/** Deletes a blob with its record, the snapshot links to it, and what was unpacked from it. */
export function removeBlob(layout: CacheLayout, record: BlobRecord): void {
  const blob = path.join(layout.root, record.blob)
  const owner = path.dirname(path.dirname(blob))
  for (const { link } of linksUnder(path.join(owner, 'snapshots')).filter((l) => l.blob === blob)) {
    rmSync(link, { force: true })
    const commit = path.relative(path.join(owner, 'snapshots'), link).split(path.sep)[0] ?? ''
    rmSync(path.join(layout.root, '.llorch', 'complete', `${path.basename(owner)}--${commit}`), { force: true })
  }
  if (owner === path.join(layout.root, 'engines')) rmSync(layout.engineDir(record.sha256), { recursive: true, force: true })
  rmSync(blob, { force: true })
  rmSync(layout.recordFile(blob), { force: true })
}

/** Records of blobs still in the cache that no configured pool uses, least recently used first. */
export function unusedRecords(layout: CacheLayout, pools: readonly PoolConfig[]): BlobRecord[] {
  const used = poolsByBlob(layout, pools)
  return listRecords(layout)
    .filter((r) => existsSync(path.join(layout.root, r.blob)) && !used.has(path.join(layout.root, r.blob)))
    .sort((a, b) => a.last_used_at - b.last_used_at)
}

/**
 * Removes least recently used blobs that no pool uses until the cache holds at most `maxBytes`
 * (or as close as it gets: blobs in use stay). Returns what was removed.
 */
export function evictToFit(layout: CacheLayout, { maxBytes, pools }: { maxBytes: number; pools: readonly PoolConfig[] }): BlobRecord[] {
  let total = listRecords(layout).reduce((sum, r) => sum + (existsSync(path.join(layout.root, r.blob)) ? r.size : 0), 0)
  const removed: BlobRecord[] = []
  for (const record of unusedRecords(layout, pools)) {
    if (total <= maxBytes) break
    removeBlob(layout, record)
    total -= record.size
    removed.push(record)
  }
  return removed
}
