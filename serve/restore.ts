import { chmodSync, cpSync, existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { describeIssues } from '../protocol/index.ts'
import { BACKUP_MANIFEST, BackupManifest } from './backup.ts'
import { ensureStateDir, statePaths } from './state-dir.ts'

/**
 * `llorch serve restore IN`: a backup onto an empty state dir. The next `llorch serve` there
 * migrates the registry (a backup of an older release is upgraded) and serves the same keys,
 * nodes, pools and usage, with the same admin token.
 */
export function restore(input: string, stateDir: string): { version: string; createdAt: string } {
  const source = path.resolve(input)
  const manifestFile = path.join(source, BACKUP_MANIFEST)
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(manifestFile, 'utf8'))
  } catch (error) {
    throw new Error(`${manifestFile}: not a llorch serve backup (${error instanceof Error ? error.message : String(error)})`)
  }
  const manifest = BackupManifest.safeParse(raw)
  if (!manifest.success) throw new Error(`${manifestFile}: ${describeIssues(manifest.error.issues)}`)
  const paths = statePaths(stateDir)
  if (existsSync(paths.root) && readdirSync(paths.root).length > 0) throw new Error(`${paths.root} is not empty; restore goes onto a new state dir (move the old one away first)`)
  ensureStateDir(paths)
  cpSync(path.join(source, 'registry.db'), paths.registry)
  cpSync(path.join(source, 'objects'), paths.objects, { recursive: true })
  for (const file of manifest.data.files) {
    cpSync(path.join(source, file), path.join(paths.root, file))
    chmodSync(path.join(paths.root, file), 0o600)
  }
  return { version: manifest.data.version, createdAt: manifest.data.created_at }
}
