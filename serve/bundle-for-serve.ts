import path from 'node:path'
import { unstable_readConfig } from 'wrangler'
import { buildWorker } from '../scripts/local/build-worker.ts'
import { PROJECT_ROOT } from '../scripts/local/project-root.ts'
import { manifestFromWranglerConfig, type WorkerManifest } from './worker-manifest.ts'

export const WRANGLER_TOML = path.join(PROJECT_ROOT, 'wrangler.toml')

/** The manifest of the Worker wrangler.toml describes. */
export function wranglerManifest(): WorkerManifest {
  return manifestFromWranglerConfig(unstable_readConfig({ config: WRANGLER_TOML }), WRANGLER_TOML)
}

/** Bundles the Worker as `wrangler deploy` would, into `outDir`, with its manifest. */
export async function bundleForServe(outDir: string): Promise<{ bundleFile: string; manifest: WorkerManifest }> {
  const { bundlePath } = await buildWorker({ outDir })
  return { bundleFile: bundlePath, manifest: wranglerManifest() }
}
