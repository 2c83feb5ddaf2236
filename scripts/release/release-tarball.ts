import { createHash } from 'node:crypto'
import { readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { build } from 'esbuild'
import { execa } from 'execa'
import { z } from 'zod'
import { PROJECT_ROOT } from '../local/project-root.ts'

const Package = z.object({ version: z.string(), dependencies: z.object({ node: z.string() }) })

/** The Node binary the `node` package installed: the runtime every npm script already uses. */
export const PINNED_NODE = path.join(PROJECT_ROOT, 'node_modules/node/bin/node')

export interface ReleaseTarget {
  version: string
  /** `v24.…`, checked against package.json's pin. */
  nodeVersion: string
  nodeMajor: string
  arch: 'x64' | 'arm64'
  fail(message: string): never
}

/**
 * What every release build checks first: Linux, a CPU with a release, and the pinned Node
 * installed at the version package.json names. `script` prefixes every failure line.
 */
export async function releaseTarget(script: string): Promise<ReleaseTarget> {
  const fail = (message: string): never => {
    process.stderr.write(`${script}: ${message}\n`)
    process.exit(1)
  }
  const pkg = Package.parse(JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')))
  if (process.platform !== 'linux') fail(`the release is for Linux (systemd); this is ${process.platform}`)
  const arch = process.arch === 'x64' || process.arch === 'arm64' ? process.arch : fail(`no release for CPU ${process.arch}`)
  const nodeVersion = (await execa(PINNED_NODE, ['--version'])).stdout.trim()
  if (nodeVersion !== `v${pkg.dependencies.node}`) fail(`${PINNED_NODE} is ${nodeVersion}, package.json pins ${pkg.dependencies.node}; run npm install`)
  return { version: pkg.version, nodeVersion, nodeMajor: pkg.dependencies.node.split('.')[0] ?? '', arch, fail }
}

/** Packs `<outDir>/<name>` into `<outDir>/<name>.tar.gz` owned by root, removes the folder, and describes the tarball. */
export async function packTarball(outDir: string, name: string): Promise<{ tarball: string; sha256: string; mib: string }> {
  const tarball = path.join(outDir, `${name}.tar.gz`)
  await execa('tar', ['-C', outDir, '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, name])
  rmSync(path.join(outDir, name), { recursive: true, force: true })
  const sha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex')
  return { tarball, sha256, mib: (statSync(tarball).size / 2 ** 20).toFixed(1) }
}

/**
 * `entry` and everything it imports as one ESM file for the release's Node. Native addons named
 * in `external` stay out (the release copies them beside the bundle).
 */
export async function bundleForNode({
  entry,
  outfile,
  nodeMajor,
  external = [],
}: {
  entry: string
  outfile: string
  nodeMajor: string
  external?: string[]
}): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${nodeMajor}`,
    // ws loads these optional native speed-ups in a try/catch and falls back to plain JS.
    external: ['bufferutil', 'utf-8-validate', ...external],
    // CommonJS dependencies (ws, pino, libsql) call require() for Node built-ins, which ESM lacks.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'warning',
  })
}
