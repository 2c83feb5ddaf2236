/**
 * `npm run build:agent [-- --out-dir DIR]`: the agent release a GPU machine installs without the
 * repository. One tarball, `dist/agent/llorch-agent-<version>-linux-<arch>.tar.gz`, holding the
 * agent bundled into one ESM file, the pinned Node runtime, install.sh, uninstall.sh, the systemd
 * unit and the example configs. The installer downloads nothing.
 */
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { execa } from 'execa'
import { z } from 'zod'
import { PROJECT_ROOT } from './local/build-worker.ts'

const Package = z.object({ version: z.string(), dependencies: z.object({ node: z.string() }) })
const pkg = Package.parse(JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')))

/** The Node binary the `node` package installed: the runtime every npm script already uses. */
const PINNED_NODE = path.join(PROJECT_ROOT, 'node_modules/node/bin/node')

function fail(message: string): never {
  process.stderr.write(`build:agent: ${message}\n`)
  process.exit(1)
}

const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: path.join(PROJECT_ROOT, 'dist/agent') } } })
const outDir = path.resolve(values['out-dir'])

if (process.platform !== 'linux') fail(`the release is for Linux (systemd); this is ${process.platform}`)
const arch = process.arch === 'x64' || process.arch === 'arm64' ? process.arch : fail(`no release for CPU ${process.arch}`)

const name = `llorch-agent-${pkg.version}-linux-${arch}`
const stage = path.join(outDir, name)
const tarball = path.join(outDir, `${name}.tar.gz`)
rmSync(stage, { recursive: true, force: true })
rmSync(tarball, { force: true })
mkdirSync(path.join(stage, 'bin'), { recursive: true })
mkdirSync(path.join(stage, 'examples'), { recursive: true })

const nodeVersion = (await execa(PINNED_NODE, ['--version'])).stdout.trim()
if (nodeVersion !== `v${pkg.dependencies.node}`) fail(`${PINNED_NODE} is ${nodeVersion}, package.json pins ${pkg.dependencies.node}; run npm install`)

await build({
  entryPoints: [path.join(PROJECT_ROOT, 'node-agent/cli.ts')],
  outfile: path.join(stage, 'lib/llorch-agent.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${pkg.dependencies.node.split('.')[0]}`,
  // ws loads these optional native speed-ups in a try/catch and falls back to plain JS.
  external: ['bufferutil', 'utf-8-validate'],
  // CommonJS dependencies (ws, pino) call require() for Node built-ins, which ESM lacks.
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: 'warning',
})
copyFileSync(PINNED_NODE, path.join(stage, 'bin/node'))
for (const file of ['install.sh', 'uninstall.sh']) copyFileSync(path.join(PROJECT_ROOT, 'node-agent/release', file), path.join(stage, file))
copyFileSync(path.join(PROJECT_ROOT, 'node-agent/llorch-agent.service'), path.join(stage, 'llorch-agent.service'))
// The fake-engine example needs the repository; the others are what a GPU machine runs.
for (const file of readdirSync(path.join(PROJECT_ROOT, 'node-agent/examples')).filter((f) => f.endsWith('.yaml'))) {
  copyFileSync(path.join(PROJECT_ROOT, 'node-agent/examples', file), path.join(stage, 'examples', file))
}

// The bundle must run from the release alone: no node_modules beside it, its own Node.
const smoke = await execa(path.join(stage, 'bin/node'), [path.join(stage, 'lib/llorch-agent.mjs'), '--version'], { cwd: stage, env: { PATH: '/usr/bin:/bin' }, extendEnv: false })
if (smoke.stdout.trim() !== pkg.version) fail(`the bundle printed ${smoke.stdout} for --version, expected ${pkg.version}`)

await execa('tar', ['-C', outDir, '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, name])
rmSync(stage, { recursive: true, force: true })

const sha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex')
const mib = (statSync(tarball).size / 2 ** 20).toFixed(1)
process.stdout.write(`${tarball}
  llorch-agent ${pkg.version} with Node ${nodeVersion} for linux-${arch}, ${mib} MiB, sha256 ${sha256}
  On the GPU machine: tar xzf ${name}.tar.gz && echo 'lln.…' | sudo ./${name}/install.sh --control-plane-url https://… --token-stdin --start
`)
