/**
 * `npm run build:server [-- --out-dir DIR]`: the home-profile release, `llorch serve` on a machine
 * without the repository or a Cloudflare account. One tarball,
 * `dist/server/llorch-server-<version>-linux-<arch>.tar.gz`, holding the Worker bundle `wrangler
 * deploy` uploads with its manifest (from wrangler.toml), workerd, the pinned Node, the `llorch`
 * CLI, the libSQL server (with its native engine), the agent, the registry migrations,
 * install.sh, uninstall.sh and the systemd unit. The installer downloads nothing.
 */
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { execa } from 'execa'
import { z } from 'zod'
import { bundleForServe } from '../serve/bundle-for-serve.ts'
import { RELEASE_MARKER } from '../serve/layout.ts'
import { PROJECT_ROOT } from './local/build-worker.ts'

const Package = z.object({ version: z.string(), dependencies: z.object({ node: z.string() }) })
const pkg = Package.parse(JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')))

const PINNED_NODE = path.join(PROJECT_ROOT, 'node_modules/node/bin/node')
const WORKERD = path.join(PROJECT_ROOT, 'node_modules/workerd/bin/workerd')

function fail(message: string): never {
  process.stderr.write(`build:server: ${message}\n`)
  process.exit(1)
}

const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: path.join(PROJECT_ROOT, 'dist/server') } } })
const outDir = path.resolve(values['out-dir'])

if (process.platform !== 'linux') fail(`the release is for Linux (systemd); this is ${process.platform}`)
const arch = process.arch === 'x64' || process.arch === 'arm64' ? process.arch : fail(`no release for CPU ${process.arch}`)

const name = `llorch-server-${pkg.version}-linux-${arch}`
const stage = path.join(outDir, name)
const lib = path.join(stage, 'lib')
const tarball = path.join(outDir, `${name}.tar.gz`)
rmSync(stage, { recursive: true, force: true })
rmSync(tarball, { force: true })
mkdirSync(path.join(stage, 'bin'), { recursive: true })
mkdirSync(path.join(lib, 'worker'), { recursive: true })

const nodeVersion = (await execa(PINNED_NODE, ['--version'])).stdout.trim()
if (nodeVersion !== `v${pkg.dependencies.node}`) fail(`${PINNED_NODE} is ${nodeVersion}, package.json pins ${pkg.dependencies.node}; run npm install`)
const workerdVersion = (await execa(WORKERD, ['--version'])).stdout.trim()

// The Worker exactly as `wrangler deploy` bundles it, and what workerd needs from wrangler.toml.
const bundleDir = path.join(outDir, `${name}-worker`)
const { bundleFile, manifest } = await bundleForServe(bundleDir)
cpSync(bundleFile, path.join(lib, 'worker/index.js'))
rmSync(bundleDir, { recursive: true, force: true })
writeFileSync(path.join(lib, 'worker/manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)

const entries = { llorch: 'cli/llorch.ts', 'libsql-server': 'db/libsql-server/cli.ts', 'llorch-agent': 'node-agent/cli.ts' }
for (const [out, entry] of Object.entries(entries)) {
  await build({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    outfile: path.join(lib, `${out}.mjs`),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${pkg.dependencies.node.split('.')[0]}`,
    // ws's optional speed-ups fall back to plain JS; libsql's native engine is copied beside the bundles.
    external: ['bufferutil', 'utf-8-validate', '@libsql/linux-*'],
    // CommonJS dependencies (ws, pino, libsql) call require(), which ESM lacks.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'error',
  })
}
// libsql loads `@libsql/<platform>` by name at run time; both C libraries' builds go along.
for (const libc of ['gnu', 'musl']) {
  const native = path.join(PROJECT_ROOT, 'node_modules/@libsql', `linux-${arch}-${libc}`)
  try {
    statSync(native)
  } catch {
    continue
  }
  cpSync(native, path.join(lib, 'node_modules/@libsql', `linux-${arch}-${libc}`), { recursive: true })
}
cpSync(path.join(PROJECT_ROOT, 'migrations'), path.join(lib, 'migrations'), { recursive: true })
writeFileSync(path.join(lib, RELEASE_MARKER), `${JSON.stringify({ version: pkg.version, node: nodeVersion, workerd: workerdVersion }, null, 2)}\n`)
cpSync(PINNED_NODE, path.join(stage, 'bin/node'))
cpSync(WORKERD, path.join(stage, 'bin/workerd'))
for (const file of ['install.sh', 'uninstall.sh', 'llorch.service']) cpSync(path.join(PROJECT_ROOT, 'serve/release', file), path.join(stage, file))

// The bundles must run from the release alone: no node_modules of the repository, its own Node.
const alone = { cwd: stage, env: { PATH: '/usr/bin:/bin' }, extendEnv: false }
const smoke = await execa(path.join(stage, 'bin/node'), [path.join(lib, 'llorch.mjs'), '--version'], alone)
if (smoke.stdout.trim() !== pkg.version) fail(`llorch.mjs printed ${smoke.stdout} for --version, expected ${pkg.version}`)

await execa('tar', ['-C', outDir, '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, name])
rmSync(stage, { recursive: true, force: true })

const sha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex')
const mib = (statSync(tarball).size / 2 ** 20).toFixed(1)
process.stdout.write(`${tarball}
  llorch-server ${pkg.version} with Node ${nodeVersion} and ${workerdVersion} for linux-${arch}, ${mib} MiB, sha256 ${sha256}
  On the home server: tar xzf ${name}.tar.gz && sudo ./${name}/install.sh --start
`)
