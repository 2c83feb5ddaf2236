import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CreateNodeResponse, PoolView } from '../../protocol/index.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { FAKE_ENGINE, FIXTURE_BIN, REPO_ROOT, enginePidsIn, useProcessCleanup, waitFor } from '../support/processes.ts'

/** Bundling and packing 120 MiB of Node on a loaded machine. */
const BUILD_TIMEOUT_MS = 240_000
/** A PATH without the pinned Node: only the release's own Node may run the agent. */
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin'

const version = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version
const cleanup = useProcessCleanup()
let work: string
let release: string
let stack: Stack

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'llorch-release-'))
  const [built, started] = await Promise.all([
    execa(process.execPath, [path.join(REPO_ROOT, 'scripts/build-agent.ts'), '--out-dir', path.join(work, 'dist')], { cwd: REPO_ROOT }),
    startStack(),
  ])
  stack = started
  release = built.stdout.split('\n')[0] ?? ''
}, BUILD_TIMEOUT_MS)
afterAll(async () => {
  await stack?.stop()
  rmSync(work, { recursive: true, force: true })
})

describe('the agent release (npm run build:agent)', () => {
  it('is one tarball holding the bundled agent, its Node, the scripts, the unit and the examples, and nothing from node_modules', async () => {
    expect(release).toBe(path.join(work, 'dist', `llorch-agent-${version}-linux-${process.arch}.tar.gz`))
    const listing = (await execa('tar', ['-tzf', release])).stdout.split('\n').filter((entry) => !entry.endsWith('/'))
    const top = `llorch-agent-${version}-linux-${process.arch}`
    expect(listing.sort()).toEqual(
      [
        'bin/node',
        'examples/llamacpp-hf.yaml',
        'examples/llamacpp.yaml',
        'examples/ollama.yaml',
        'examples/vllm-snapshot.yaml',
        'examples/vllm.yaml',
        'install.sh',
        'lib/llorch-agent.mjs',
        'llorch-agent.service',
        'uninstall.sh',
      ].map((f) => `${top}/${f}`),
    )
  })

  it(
    'installs into a scratch root without systemd or a new user, runs on its own Node, connects, and uninstalls',
    async () => {
      const unpacked = path.join(work, 'unpacked')
      mkdirSync(unpacked)
      await execa('tar', ['-C', unpacked, '-xzf', release])
      const installer = path.join(unpacked, `llorch-agent-${version}-linux-${process.arch}`, 'install.sh')
      const root = path.join(work, 'root')
      const node = CreateNodeResponse.parse(await (await stack.admin('POST', '/v2/nodes', { name: 'release-node' })).json())

      // The stand-in engines on PATH are what init finds; the pinned Node is not on it.
      const install = await execa(installer, ['--root', root, '--control-plane-url', stack.url.toString(), '--token-stdin'], {
        input: `${node.token}\n`,
        env: { PATH: `${FIXTURE_BIN}:${SYSTEM_PATH}` },
        extendEnv: false,
      })
      expect(install.stdout).toContain(`staging install under ${root}: no user created, nothing chowned, systemctl not run`)
      const tokenFile = path.join(root, 'etc/llorch/node-token')
      expect(readFileSync(tokenFile, 'utf8')).toBe(`${node.token}\n`)
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600)
      expect(statSync(path.join(root, 'var/lib/llorch-agent')).isDirectory()).toBe(true)
      const unit = readFileSync(path.join(root, 'etc/systemd/system/llorch-agent.service'), 'utf8')
      expect(unit).toContain('ExecStart=/usr/local/bin/llorch-agent run --config /etc/llorch/agent.yaml')
      expect(unit).toContain('User=llorch')
      const installedConfig = readFileSync(path.join(root, 'etc/llorch/agent.yaml'), 'utf8')
      expect(installedConfig).toContain(`control_plane_url: "${stack.url.toString()}"`)
      expect(installedConfig).toContain(`binary: "${FIXTURE_BIN}/llama-server"`)

      const agentCli = path.join(root, 'usr/local/bin/llorch-agent')
      const run = (args: string[]) => execa(agentCli, args, { reject: false, env: { PATH: SYSTEM_PATH }, extendEnv: false, stdin: 'ignore' })
      expect((await run(['--version'])).stdout).toBe(version)
      // The installed config names the real /etc/llorch/node-token, so under a scratch root only its fields can be checked.
      expect((await run(['validate', '--config', path.join(root, 'etc/llorch/agent.yaml'), '--fields-only'])).exitCode).toBe(0)

      // A config for this root: the fake engine on {node}, which must be the release's Node.
      const config = path.join(root, 'etc/llorch/scratch.json')
      const stateDir = path.join(root, 'var/lib/llorch-agent')
      writeFileSync(
        config,
        JSON.stringify({
          control_plane_url: stack.url.toString(),
          node_token_file: tokenFile,
          state_dir: stateDir,
          shutdown_drain_ms: 1_000,
          pools: [
            { id: 'release-model', engine: 'command', command: ['{node}', FAKE_ENGINE, '--port', '{port}'], health_interval_ms: 20, liveness_interval_ms: 0 },
          ],
        }),
      )
      expect(await run(['validate', '--config', config])).toMatchObject({ exitCode: 0, stdout: `${config}: ok, 1 pool: release-model (command)` })
      const doctor = await run(['doctor', '--config', config])
      expect(doctor.stdout).toContain(`ok    engine         pools[0].command[0]: ${root}/opt/llorch-agent/bin/node (pool release-model)`)
      expect(doctor.stdout).toContain(`ok    node token     accepted as node ${node.id}`)
      expect(doctor.stdout).toContain('ok    agent link')
      expect(doctor.exitCode).toBe(0)

      const agent = execa(agentCli, ['run', '--config', config], {
        reject: false,
        detached: true,
        env: { PATH: SYSTEM_PATH },
        extendEnv: false,
        stdin: 'ignore',
      })
      cleanup.track(agent.pid)
      cleanup.defer(() => {
        for (const pid of enginePidsIn(stateDir)) cleanup.track(pid)
      })
      await waitFor(
        async () => {
          const pool = await stack.admin('GET', '/v2/pools/release-model')
          return pool.status === 200 && PoolView.parse(await pool.json()).state === 'ready'
        },
        { timeoutMs: 30_000, message: 'release-model ready through the installed agent' },
      )
      process.kill(agent.pid ?? 0, 'SIGTERM')
      expect((await agent).exitCode).toBe(0)

      // Installing again keeps the config and the token.
      const before = readFileSync(path.join(root, 'etc/llorch/agent.yaml'), 'utf8')
      const again = await execa(installer, ['--root', root], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
      expect(again.stdout).toContain(`config: ${root}/etc/llorch/agent.yaml exists, left alone`)
      expect(again.stdout).toContain(`token file: ${tokenFile} exists, left alone`)
      expect(readFileSync(path.join(root, 'etc/llorch/agent.yaml'), 'utf8')).toBe(before)
      expect(readFileSync(tokenFile, 'utf8')).toBe(`${node.token}\n`)

      const uninstaller = path.join(root, 'opt/llorch-agent/uninstall.sh')
      const removed = await execa(uninstaller, ['--root', root], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
      expect(removed.stdout).toContain('--purge removes them')
      for (const gone of ['opt/llorch-agent', 'usr/local/bin/llorch-agent', 'etc/systemd/system/llorch-agent.service'])
        expect(existsSync(path.join(root, gone)), gone).toBe(false)
      for (const kept of ['etc/llorch/agent.yaml', 'etc/llorch/node-token', 'var/lib/llorch-agent']) expect(existsSync(path.join(root, kept)), kept).toBe(true)

      await execa(installer, ['--root', root], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
      await execa(uninstaller, ['--root', root, '--purge'], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
      expect((await execa('find', [root, '-type', 'f'])).stdout).toBe('')
    },
    BUILD_TIMEOUT_MS,
  )

  it(
    'installs as root for real, with the llorch user owning the token and state, and purges it all',
    async (context) => {
      if (process.getuid?.() !== 0 || (await execa('unshare', ['-m', '--propagation', 'private', 'true'], { reject: false })).exitCode !== 0) {
        context.skip('needs root and a private mount namespace (unshare -m) to install into overlays of /etc, /opt, /usr/local and /var/lib')
      }
      const unpacked = path.join(work, 'unpacked-root')
      mkdirSync(unpacked)
      await execa('tar', ['-C', unpacked, '-xzf', release])
      const top = path.join(unpacked, `llorch-agent-${version}-linux-${process.arch}`)
      const overlays = path.join(work, 'overlays')
      // Everything the installer writes lands in overlay upper dirs under `overlays`; this machine's /etc stays as it is.
      const script = [
        'set -euo pipefail',
        'for dir in /etc /opt /usr/local /var/lib; do',
        `  layer=${overlays}$dir; mkdir -p "$layer/upper" "$layer/work"`,
        '  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"',
        'done',
        `echo "$NODE_TOKEN" | ${top}/install.sh --control-plane-url https://llorch.test.workers.dev --token-stdin`,
        'echo "user: $(id -u llorch)"',
        'echo "token: $(stat -c \'%U %a\' /etc/llorch/node-token)"',
        'echo "state: $(stat -c \'%U %a\' /var/lib/llorch-agent)"',
        'runuser -u llorch -- /usr/local/bin/llorch-agent validate --config /etc/llorch/agent.yaml --fields-only',
        '/opt/llorch-agent/uninstall.sh --purge',
        'id -u llorch >/dev/null 2>&1 && echo "user left" || echo "user removed"',
        'ls -d /etc/llorch /opt/llorch-agent /var/lib/llorch-agent /usr/local/bin/llorch-agent 2>/dev/null || echo "files removed"',
      ].join('\n')
      const usersBefore = readFileSync('/etc/passwd', 'utf8')
      const result = await execa('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], {
        reject: false,
        all: true,
        env: { NODE_TOKEN: `lln.node_AAAAAAAAAAAA.${'A'.repeat(43)}`, PATH: `${SYSTEM_PATH}:/usr/sbin:/sbin` },
      })
      expect(result.exitCode, result.all).toBe(0)
      const lines = result.all.split('\n')
      expect(lines).toContain('user llorch: created')
      expect(lines).toContain('token: llorch 600')
      expect(lines).toContain('state: llorch 750')
      expect(lines).toContain('/etc/llorch/agent.yaml: ok, 1 pool: qwen2.5-7b-instruct (llamacpp) (fields only; files not checked)')
      expect(lines).toContain(
        'systemd is not running here: start the agent yourself with /usr/local/bin/llorch-agent run --config /etc/llorch/agent.yaml (as llorch)',
      )
      expect(lines.at(-3)).toBe('purged: /etc/llorch, /var/lib/llorch-agent, user llorch')
      expect(lines.slice(-2)).toEqual(['user removed', 'files removed'])
      expect(readFileSync('/etc/passwd', 'utf8')).toBe(usersBefore)
    },
    BUILD_TIMEOUT_MS,
  )
})
