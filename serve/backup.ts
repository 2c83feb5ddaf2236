import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { LLORCH_VERSION } from '../protocol/index.ts'
import { openRegistryFile } from './registry-file.ts'
import { servedNow, statePaths, type StatePaths } from './state-dir.ts'

/** `<backup>/backup.json`: what made it and when; restore reads it to know the folder is a backup. */
export const BackupManifest = z.object({
  version: z.string(),
  created_at: z.iso.datetime(),
  /** The state dir's files copied beside registry.db and objects/. */
  files: z.array(z.enum(['admin-token', 'libsql-token', 'local-node.json', 'local-node-token'])),
})
export const BACKUP_MANIFEST = 'backup.json'

/** Secrets and the local node, so a restored box answers the same admin token and agent. */
function keptFiles(paths: StatePaths) {
  return [paths.adminToken, paths.libsqlToken, paths.localNode, paths.localNodeToken].filter((file) => existsSync(file))
}

/**
 * Copies objects/ with the serving workerd paused (SIGSTOP, then SIGCONT): a Durable Object's
 * SQLite file and WAL are then as a crash would leave them, which SQLite recovers to the last
 * commit. Everything workerd acknowledged before the pause is in the copy.
 */
function copyObjects(paths: StatePaths, into: string): void {
  const workerdPid = servedNow(paths)?.workerdPid ?? null
  if (workerdPid !== null) process.kill(workerdPid, 'SIGSTOP')
  try {
    cpSync(paths.objects, into, { recursive: true })
  } finally {
    if (workerdPid !== null) process.kill(workerdPid, 'SIGCONT')
  }
}

/**
 * `llorch serve backup OUT`: a consistent copy of a state dir, served or not. The registry by
 * `VACUUM INTO` (one read transaction), the Durable Objects with workerd briefly paused, and
 * the admin token, registry credential and local node.
 */
export async function backup(stateDir: string, out: string): Promise<{ files: string[] }> {
  const paths = statePaths(stateDir)
  if (!existsSync(paths.registry)) throw new Error(`${paths.registry} does not exist: is ${paths.root} a llorch serve state dir?`)
  const target = path.resolve(out)
  if (existsSync(target) && readdirSync(target).length > 0) throw new Error(`${target} is not empty; give a new folder`)
  mkdirSync(target, { recursive: true, mode: 0o700 })
  const client = openRegistryFile(paths.registry)
  try {
    await client.execute({ sql: 'VACUUM INTO ?', args: [path.join(target, 'registry.db')] })
  } finally {
    client.close()
  }
  copyObjects(paths, path.join(target, 'objects'))
  const files = BackupManifest.shape.files.parse(keptFiles(paths).map((file) => path.basename(file)))
  for (const file of files) cpSync(path.join(paths.root, file), path.join(target, file))
  const manifest: z.infer<typeof BackupManifest> = { version: LLORCH_VERSION, created_at: new Date().toISOString(), files }
  writeFileSync(path.join(target, BACKUP_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 })
  return { files: ['registry.db', 'objects', ...files] }
}
