import { existsSync } from 'node:fs'
import path from 'node:path'
import type { PoolConfig } from '../config/schema.ts'
import { listRecords } from './cache-layout.ts'
import type { BlobRecord, CacheLayout } from './cache-layout.ts'
import { poolsByBlob } from './cache-usage.ts'

/** One blob of the cache as `llorch-agent models` shows it. */
export interface CachedBlob extends BlobRecord {
  /** Configured pools whose sources resolve to it. */
  pools: string[]
}

/** The blobs in the cache, most recently used first, with the pools that use each. */
export function listCache(layout: CacheLayout, pools: readonly PoolConfig[]): CachedBlob[] {
  const users = poolsByBlob(layout, pools)
  return listRecords(layout)
    .filter((r) => existsSync(path.join(layout.root, r.blob)))
    .map((r) => ({ ...r, pools: users.get(path.join(layout.root, r.blob)) ?? [] }))
    .sort((a, b) => b.last_used_at - a.last_used_at)
}
