import { serveLayout } from './layout.ts'
import { migrateRegistryFile } from './migrate-registry.ts'
import { ensureSecretFile, ensureStateDir, statePaths } from './state-dir.ts'

/**
 * `llorch serve init`: the state dir (0700) with its admin token and registry credential
 * (0600 each) and a migrated registry, before the first start. Running it again changes nothing
 * that exists.
 */
export async function init(stateDir: string): Promise<string[]> {
  const paths = statePaths(stateDir)
  ensureStateDir(paths)
  const lines: string[] = []
  const admin = ensureSecretFile(paths.adminToken, 'lla.')
  lines.push(admin.created ? `wrote the admin token to ${paths.adminToken} (mode 0600); it is not printed` : `admin token: ${paths.adminToken} exists, kept`)
  const registryToken = ensureSecretFile(paths.libsqlToken, 'lls.')
  lines.push(
    registryToken.created ? `wrote the registry credential to ${paths.libsqlToken} (mode 0600)` : `registry credential: ${paths.libsqlToken} exists, kept`,
  )
  await migrateRegistryFile(paths.registry, serveLayout().migrationsFolder)
  lines.push(`registry ${paths.registry} migrated`)
  return lines
}
