import { execa } from 'execa'
import path from 'node:path'

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..')

export interface BuiltWorker {
  /** The single ESM bundle `wrangler deploy --dry-run` writes. */
  bundlePath: string
}

/**
 * Bundles the Worker exactly as `wrangler deploy` would, without uploading. Runs wrangler with
 * the project's pinned Node (`process.execPath`), since the system Node may be too old.
 */
export async function buildWorker({
  outDir = path.join(PROJECT_ROOT, 'dist'),
  sourceMap = false,
}: { outDir?: string; sourceMap?: boolean } = {}): Promise<BuiltWorker> {
  const wrangler = path.join(PROJECT_ROOT, 'node_modules/wrangler/bin/wrangler.js')
  await execa(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outDir, ...(sourceMap ? ['--upload-source-maps'] : [])], {
    cwd: PROJECT_ROOT,
    env: { WRANGLER_SEND_METRICS: 'false', CI: '1' },
    stdout: 'ignore',
  })
  return { bundlePath: path.join(outDir, 'index.js') }
}
