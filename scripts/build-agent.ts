/**
 * `npm run build:agent [-- --out-dir DIR]`: the agent release a GPU machine installs without the
 * repository. One tarball, `dist/agent/llorch-agent-<version>-linux-<arch>.tar.gz`, holding the
 * agent bundled into one ESM file, the pinned Node runtime, install.sh, uninstall.sh, the systemd
 * unit and the example configs. The installer downloads nothing.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { PROJECT_ROOT } from './local/project-root.ts'
import { PINNED_NODE, bundleForNode, packTarball, releaseTarget } from './release/release-tarball.ts'

const { version, nodeVersion, nodeMajor, arch, fail } = await releaseTarget('build:agent')
const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: path.join(PROJECT_ROOT, 'dist/agent') } } })
const outDir = path.resolve(values['out-dir'])

const name = `llorch-agent-${version}-linux-${arch}`
const stage = path.join(outDir, name)
rmSync(stage, { recursive: true, force: true })
rmSync(path.join(outDir, `${name}.tar.gz`), { force: true })
mkdirSync(path.join(stage, 'bin'), { recursive: true })
mkdirSync(path.join(stage, 'examples'), { recursive: true })

await bundleForNode({ entry: path.join(PROJECT_ROOT, 'node-agent/cli.ts'), outfile: path.join(stage, 'lib/llorch-agent.mjs'), nodeMajor })
copyFileSync(PINNED_NODE, path.join(stage, 'bin/node'))
for (const file of ['install.sh', 'uninstall.sh']) copyFileSync(path.join(PROJECT_ROOT, 'node-agent/release', file), path.join(stage, file))
copyFileSync(path.join(PROJECT_ROOT, 'node-agent/llorch-agent.service'), path.join(stage, 'llorch-agent.service'))
// The fake-engine example needs the repository; the others are what a GPU machine runs.
for (const file of readdirSync(path.join(PROJECT_ROOT, 'node-agent/examples')).filter((f) => f.endsWith('.yaml'))) {
  copyFileSync(path.join(PROJECT_ROOT, 'node-agent/examples', file), path.join(stage, 'examples', file))
}

// The bundle must run from the release alone: no node_modules beside it, its own Node.
const smoke = await execa(path.join(stage, 'bin/node'), [path.join(stage, 'lib/llorch-agent.mjs'), '--version'], {
  cwd: stage,
  env: { PATH: '/usr/bin:/bin' },
  extendEnv: false,
})
if (smoke.stdout.trim() !== version) fail(`the bundle printed ${smoke.stdout} for --version, expected ${version}`)

const { tarball, sha256, mib } = await packTarball(outDir, name)
process.stdout.write(`${tarball}
  llorch-agent ${version} with Node ${nodeVersion} for linux-${arch}, ${mib} MiB, sha256 ${sha256}
  On the GPU machine: tar xzf ${name}.tar.gz && echo 'lln.…' | sudo ./${name}/install.sh --control-plane-url https://… --token-stdin --start
`)
