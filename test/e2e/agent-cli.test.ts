import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { AgentStatus, readStatusFile } from '../../node-agent/state-dir/status-file.ts'
import { fakePoolInput, spawnAgentCli, writeAgentConfig } from '../support/agents.ts'
import { AGENT_CLI, REPO_ROOT, enginePidsIn, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

const cli = (args: string[]) => execa(process.execPath, [AGENT_CLI, ...args], { reject: false, cwd: REPO_ROOT, stdin: 'ignore' })

const packageVersion = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version

describe('llorch-agent CLI', () => {
  it('prints its commands with --help and the package version with --version', async () => {
    const help = await cli(['--help'])
    expect(help.exitCode).toBe(0)
    expect(help.stdout).toMatch(/Usage: llorch-agent \[options\] \[command\]/)
    for (const command of ['init', 'run', 'validate', 'doctor', 'status', 'pull', 'models', 'prune']) expect(help.stdout).toContain(`${command} [options]`)
    const version = await cli(['--version'])
    expect(version.stdout.trim()).toBe(packageVersion)
  })

  it('validates the fields of every example config, and all of the runnable fake-engine one', async () => {
    const dir = path.join(REPO_ROOT, 'node-agent/examples')
    const files = readdirSync(dir)
    expect(files.length).toBeGreaterThanOrEqual(4)
    for (const file of files) {
      // The others name GPU machines' files (/opt/llama.cpp, /srv/models, /etc/llorch/node-token).
      const fieldsOnly = file !== 'fake-engine.json'
      const result = await cli(['validate', '--config', path.join(dir, file), ...(fieldsOnly ? ['--fields-only'] : [])])
      expect(result.stderr).toBe('')
      expect(result.stdout).toContain(fieldsOnly ? ' (fields only; files not checked)' : ': ok, 1 pool: fake-model (command)')
      expect(result.exitCode).toBe(0)
    }
  })

  it('runs node-agent/examples/fake-engine.json as written, on a PATH whose node is not the pinned one', async () => {
    const file = path.join(REPO_ROOT, 'node-agent/examples/fake-engine.json')
    const stateDir = path.join(REPO_ROOT, '.llorch/example-agent')
    // The stumble: `node` on this PATH is the system's (Node 20 here), which cannot run .ts files.
    const agent = execa(process.execPath, [AGENT_CLI, 'run', '--config', file], {
      reject: false,
      detached: true,
      stdin: 'ignore',
      cwd: '/',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      all: true,
    })
    cleanup.track(agent.pid)
    cleanup.defer(() => {
      for (const pid of enginePidsIn(stateDir)) cleanup.track(pid)
      rmSync(stateDir, { recursive: true, force: true })
    })
    const ready = await waitFor(
      () => readStatusFile(stateDir)?.replicas.find((r) => r.pool === 'fake-model' && (r.state === 'ready' || r.state === 'failed')),
      { message: 'fake-model ready' },
    )
    expect(ready.state).toBe('ready')
    process.kill(agent.pid ?? 0, 'SIGTERM')
    expect((await agent).exitCode).toBe(0)
  })

  it('prints every problem of a bad config with the file and field, and exits 1', async () => {
    const stateDir = cleanup.stateDir()
    const file = path.join(stateDir, 'agent.json')
    writeFileSync(
      file,
      JSON.stringify({
        pools: [
          { id: 'a', engine: 'llamacpp', model: '/m.gguf', port: '80a' },
          { id: 'b', engine: 'vllm', slots: 0, model: 'm' },
        ],
      }),
    )
    const result = await cli(['validate', '--config', file])
    expect(result.exitCode).toBe(1)
    expect(result.stderr.split('\n')).toEqual([
      `${file}: pools[0].port: expected an integer 1–65535 or "auto", got "80a" (string)`,
      `${file}: pools[1].slots: expected a number ≥ 1, got 0 (number)`,
      `${file}: 2 problems, nothing was started`,
    ])
  })

  it('does not start anything with a bad config', async () => {
    const stateDir = cleanup.stateDir()
    const file = path.join(stateDir, 'agent.yaml')
    writeFileSync(file, `state_dir: ${stateDir}/never\npools:\n  - id: a\n    engine: command\n    command: [node, "{port}"]\n    slots: many\n`)
    const result = await cli(['run', '--config', file])
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toContain(`${file}: pools[0].slots: expected an integer, got "many" (string)`)
    expect(existsSync(path.join(stateDir, 'never'))).toBe(false)
  })

  it('status exits 3 and says so when no agent is running', async () => {
    const stateDir = cleanup.stateDir()
    const result = await cli(['status', '--state-dir', stateDir])
    expect(result.exitCode).toBe(3)
    expect(result.stderr.trim()).toBe(`llorch-agent: no agent is running with state dir ${stateDir}`)
  })

  it('status shows the replicas of the running agent', async () => {
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [fakePoolInput('fake-model', [], { slots: 2 }), fakePoolInput('later', [], { preload: 'on-demand' })])
    const agent = spawnAgentCli(cleanup, config)
    await waitFor(() => readStatusFile(stateDir)?.replicas[0]?.state === 'ready', { message: 'the agent to be ready' })
    const table = await cli(['status', '--config', config])
    expect(table.exitCode).toBe(0)
    const lines = table.stdout.split('\n')
    expect(lines[0]).toMatch(new RegExp(`^llorch-agent ${packageVersion} \\(pid ${agent.pid}\\), up \\d+s, 0 tasks running, state dir ${stateDir}$`))
    expect(lines[1]).toMatch(/^POOL\s+ENGINE\s+STATE\s+SLOTS\s+VERSION\s+REASON$/)
    expect(lines[2]).toMatch(/^fake-model\s+command\s+ready\s+0\/2\s+-$/)
    expect(lines[3]).toMatch(/^later\s+command\s+stopped\s+0\/1\s+-$/)
    const json = await cli(['status', '--state-dir', stateDir, '--json'])
    expect(AgentStatus.parse(JSON.parse(json.stdout)).replicas.map((r) => [r.state, r.breaker_open])).toEqual([
      ['ready', false],
      ['stopped', false],
    ])
    process.kill(agent.pid, 'SIGTERM')
    expect((await agent.process).exitCode).toBe(0)
    expect((await cli(['status', '--state-dir', stateDir])).exitCode).toBe(3)
  })
})
