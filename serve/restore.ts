import { chmodSync, cpSync, existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { BACKUP_MANIFEST, BackupManifest } from './backup.ts'
import { readJsonFile } from './json-file.ts'
import { ensureStateDir, statePaths } from './state-dir.ts'

/**
 * `llorch serve restore IN`: a backup onto an empty state dir. The next `llorch serve` there
 * migrates the registry (a backup of an older release is upgraded) and serves the same keys,
 * nodes, pools and usage, with the same admin token.
 */
export function restore(input: string, stateDir: string): { version: string; createdAt: string } {
  const source = path.resolve(input)
  const manifestFile = path.join(source, BACKUP_MANIFEST)
  const manifest = readJsonFile(manifestFile, BackupManifest, 'a llorch serve backup manifest')
  const paths = statePaths(stateDir)
  if (existsSync(paths.root) && readdirSync(paths.root).length > 0)
    throw new Error(`${paths.root} is not empty; restore goes onto a new state dir (move the old one away first)`)
  ensureStateDir(paths)
  cpSync(path.join(source, 'registry.db'), paths.registry)
  cpSync(path.join(source, 'objects'), paths.objects, { recursive: true })
  for (const file of manifest.files) {
    cpSync(path.join(source, file), path.join(paths.root, file))
    chmodSync(path.join(paths.root, file), 0o600)
  }
  return { version: manifest.version, createdAt: manifest.created_at }
}
