/**
 * `npm run build:server [-- --out-dir DIR]`: the home-profile release, `llorch serve` on a machine
 * without the repository or a Cloudflare account. One tarball,
 * `dist/server/llorch-server-<version>-linux-<arch>.tar.gz`, holding the Worker bundle `wrangler
 * deploy` uploads with its manifest (from wrangler.toml), workerd, the pinned Node, the `llorch`
 * CLI, the libSQL server (with its native engine), the agent, the registry migrations,
 * install.sh, uninstall.sh and the systemd unit. The installer downloads nothing.
 */
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { bundleForServe } from '../serve/bundle-for-serve.ts'
import { RELEASE_MARKER } from '../serve/layout.ts'
import { PROJECT_ROOT } from './local/project-root.ts'
import { PINNED_NODE, bundleForNode, packTarball, releaseTarget } from './release/release-tarball.ts'

const WORKERD = path.join(PROJECT_ROOT, 'node_modules/workerd/bin/workerd')

const { version, nodeVersion, nodeMajor, arch, fail } = await releaseTarget('build:server')
const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: path.join(PROJECT_ROOT, 'dist/server') } } })
const outDir = path.resolve(values['out-dir'])

const name = `llorch-server-${version}-linux-${arch}`
const stage = path.join(outDir, name)
const lib = path.join(stage, 'lib')
rmSync(stage, { recursive: true, force: true })
rmSync(path.join(outDir, `${name}.tar.gz`), { force: true })
mkdirSync(path.join(stage, 'bin'), { recursive: true })
mkdirSync(path.join(lib, 'worker'), { recursive: true })

const workerdVersion = (await execa(WORKERD, ['--version'])).stdout.trim()

// The Worker exactly as `wrangler deploy` bundles it, and what workerd needs from wrangler.toml.
const bundleDir = path.join(outDir, `${name}-worker`)
const { bundleFile, manifest } = await bundleForServe(bundleDir)
cpSync(bundleFile, path.join(lib, 'worker/index.js'))
rmSync(bundleDir, { recursive: true, force: true })
writeFileSync(path.join(lib, 'worker/manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)

const entries = { llorch: 'cli/llorch.ts', 'libsql-server': 'db/libsql-server/cli.ts', 'llorch-agent': 'node-agent/cli.ts' }
for (const [out, entry] of Object.entries(entries)) {
  await bundleForNode({ entry: path.join(PROJECT_ROOT, entry), outfile: path.join(lib, `${out}.mjs`), nodeMajor, external: ['@libsql/linux-*'] })
}
// libsql loads `@libsql/<platform>` by name at run time; both C libraries' builds go along.
for (const libc of ['gnu', 'musl']) {
  const native = path.join(PROJECT_ROOT, 'node_modules/@libsql', `linux-${arch}-${libc}`)
  if (existsSync(native)) cpSync(native, path.join(lib, 'node_modules/@libsql', `linux-${arch}-${libc}`), { recursive: true })
}
cpSync(path.join(PROJECT_ROOT, 'migrations'), path.join(lib, 'migrations'), { recursive: true })
writeFileSync(path.join(lib, RELEASE_MARKER), `${JSON.stringify({ version, node: nodeVersion, workerd: workerdVersion }, null, 2)}\n`)
cpSync(PINNED_NODE, path.join(stage, 'bin/node'))
cpSync(WORKERD, path.join(stage, 'bin/workerd'))
for (const file of ['install.sh', 'uninstall.sh', 'llorch.service']) cpSync(path.join(PROJECT_ROOT, 'serve/release', file), path.join(stage, file))

// The bundles must run from the release alone: no node_modules of the repository, its own Node.
const alone = { cwd: stage, env: { PATH: '/usr/bin:/bin' }, extendEnv: false }
const smoke = await execa(path.join(stage, 'bin/node'), [path.join(lib, 'llorch.mjs'), '--version'], alone)
if (smoke.stdout.trim() !== version) fail(`llorch.mjs printed ${smoke.stdout} for --version, expected ${version}`)

const { tarball, sha256, mib } = await packTarball(outDir, name)
process.stdout.write(`${tarball}
  llorch-server ${version} with Node ${nodeVersion} and ${workerdVersion} for linux-${arch}, ${mib} MiB, sha256 ${sha256}
  On the home server: tar xzf ${name}.tar.gz && sudo ./${name}/install.sh --start
`)
