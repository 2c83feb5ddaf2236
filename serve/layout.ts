import { existsSync } from 'node:fs'
import path from 'node:path'
import { readWorkerManifest, type WorkerManifest } from './worker-manifest.ts'

/** Beside the bundled `llorch.mjs` in a release (`npm run build:server`); absent in the repository. */
export const RELEASE_MARKER = 'release.json'

/** Where the pieces `llorch serve` runs are: in an installed release, or in this repository. */
export interface ServeLayout {
  kind: 'release' | 'repository'
  /** The Node that runs the libSQL server and the agent: the one running this. */
  node: string
  workerd: string
  libsqlServer: string
  agent: string
  migrationsFolder: string
  /** The Worker bundle and its manifest; in the repository, bundled by wrangler into `outDir` first. */
  worker(outDir: string): Promise<{ bundleFile: string; manifest: WorkerManifest }>
}

export function serveLayout(): ServeLayout {
  const here = import.meta.dirname
  if (existsSync(path.join(here, RELEASE_MARKER))) {
    const prefix = path.dirname(here)
    return {
      kind: 'release',
      node: process.execPath,
      workerd: path.join(prefix, 'bin/workerd'),
      libsqlServer: path.join(here, 'libsql-server.mjs'),
      agent: path.join(here, 'llorch-agent.mjs'),
      migrationsFolder: path.join(here, 'migrations'),
      worker: async () => ({ bundleFile: path.join(here, 'worker/index.js'), manifest: readWorkerManifest(path.join(here, 'worker/manifest.json')) }),
    }
  }
  const root = path.resolve(here, '..')
  return {
    kind: 'repository',
    node: process.execPath,
    workerd: path.join(root, 'node_modules/workerd/bin/workerd'),
    libsqlServer: path.join(root, 'db/libsql-server/cli.ts'),
    agent: path.join(root, 'node-agent/cli.ts'),
    migrationsFolder: path.join(root, 'migrations'),
    async worker(outDir) {
      // Only the repository has wrangler; a release carries the bundle and manifest it made. The
      // specifier is a variable so that the release's bundler leaves this module (and wrangler) out.
      const bundler: string = './bundle-for-serve.ts'
      const { bundleForServe }: typeof import('./bundle-for-serve.ts') = await import(bundler)
      return bundleForServe(outDir)
    },
  }
}
