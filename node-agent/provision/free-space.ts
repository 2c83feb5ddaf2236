import { mkdirSync, statfsSync } from 'node:fs'
import { formatBytes } from '../../protocol/index.ts'
import { ProvisionError } from './provision-error.ts'

/** Bytes an unprivileged process may still write under `dir`. */
export function freeBytes(dir: string): number {
  mkdirSync(dir, { recursive: true })
  const stats = statfsSync(dir)
  return stats.bavail * stats.bsize
}

/** Throws `no_space` naming both numbers when `needed` bytes do not fit under `dir`. */
export function assertFreeSpace({ dir, needed, free = freeBytes(dir) }: { dir: string; needed: number; free?: number }): void {
  if (needed > free) throw new ProvisionError('no_space', `needs ${formatBytes(needed)} in ${dir}, ${formatBytes(free)} free`)
}
