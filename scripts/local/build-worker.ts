import { execa } from 'execa'
import path from 'node:path'
import { BUNDLE_META_FILE, recordBundleInputs } from './bundle-cache.ts'
import { PROJECT_ROOT } from './project-root.ts'

export interface BuiltWorker {
  /** The single ESM bundle `wrangler deploy --dry-run` writes. */
  bundlePath: string
}

/** Where `buildWorker` writes the bundle by default (`npm start` keeps it there between runs). */
export const DEFAULT_BUNDLE_PATH = path.join(PROJECT_ROOT, 'dist', 'index.js')

/**
 * Bundles the Worker exactly as `wrangler deploy` would, without uploading, and records what it
 * was built from (`bundleUpToDate` reads that back). Runs wrangler with the project's pinned
 * Node (`process.execPath`), since the system Node may be too old.
 */
export async function buildWorker({
  outDir = path.dirname(DEFAULT_BUNDLE_PATH),
  sourceMap = false,
}: { outDir?: string; sourceMap?: boolean } = {}): Promise<BuiltWorker> {
  const wrangler = path.join(PROJECT_ROOT, 'node_modules/wrangler/bin/wrangler.js')
  const args = [wrangler, 'deploy', '--dry-run', '--outdir', outDir, '--metafile', path.join(outDir, BUNDLE_META_FILE)]
  await execa(process.execPath, [...args, ...(sourceMap ? ['--upload-source-maps'] : [])], {
    cwd: PROJECT_ROOT,
    env: { WRANGLER_SEND_METRICS: 'false', CI: '1' },
    stdout: 'ignore',
  })
  recordBundleInputs(outDir, PROJECT_ROOT)
  return { bundlePath: path.join(outDir, 'index.js') }
}
