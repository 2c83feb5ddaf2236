import { existsSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readStatusFile } from '../../node-agent/state-dir/status-file.ts'
import { fakePoolInput, spawnAgentCli, writeAgentConfig } from '../support/agents.ts'
import { FIXTURE_BIN, enginePidsIn, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

async function readyPids(stateDir: string, pools: number): Promise<number[]> {
  await waitFor(
    () => {
      const status = readStatusFile(stateDir)
      return status !== null && status.replicas.filter((r) => r.state === 'ready').length === pools
    },
    { message: `${pools} ready replicas in ${stateDir}/status.json` },
  )
  const pids = enginePidsIn(stateDir)
  expect(pids).toHaveLength(pools)
  return pids
}

describe('agent shutdown and orphans', () => {
  it('on SIGTERM drains and stops every engine, then exits 0 leaving no engine behind', async () => {
    const stateDir = cleanup.stateDir()
    const agent = spawnAgentCli(cleanup, writeAgentConfig(stateDir, [fakePoolInput('a'), fakePoolInput('b', ['--ignore-sigterm'], { stop_grace_ms: 100 })]))
    const pids = await readyPids(stateDir, 2)
    process.kill(agent.pid, 'SIGTERM')
    const result = await agent.process
    expect(result.exitCode).toBe(0)
    for (const pid of pids) expect(isAlive(pid)).toBe(false)
    expect(enginePidsIn(stateDir)).toEqual([])
    expect(existsSync(path.join(stateDir, 'status.json'))).toBe(false)
    expect(agent.output()).toContain('"event":"agent.stopped"')
  })

  it('on SIGINT stops an engine that is still loading', async () => {
    const stateDir = cleanup.stateDir()
    const agent = spawnAgentCli(cleanup, writeAgentConfig(stateDir, [fakePoolInput('slow', ['--load-ms', '600000'])]))
    const [pid] = await waitFor(() => (enginePidsIn(stateDir).length === 1 ? enginePidsIn(stateDir) : null), { message: 'the engine PID file' })
    process.kill(agent.pid, 'SIGINT')
    expect((await agent.process).exitCode).toBe(0)
    expect(isAlive(pid ?? 0)).toBe(false)
  })

  it('engines die with an agent killed by SIGKILL (the parent-death signal setpriv sets)', async () => {
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [fakePoolInput('a'), fakePoolInput('b')])
    const agent = spawnAgentCli(cleanup, config)
    const engines = await readyPids(stateDir, 2)
    process.kill(agent.pid, 'SIGKILL')
    await agent.process
    await waitFor(() => engines.every((pid) => !isAlive(pid)) || null, { timeoutMs: 5_000, message: 'the engines to die with their agent' })
  })

  it('after the agent is killed with SIGKILL where there is no setpriv, the next agent stops the orphaned engines before starting its own', async () => {
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [fakePoolInput('a'), fakePoolInput('b')])
    // Only the fixtures and Node on PATH: no setpriv, so the engines outlive the agent.
    const first = spawnAgentCli(cleanup, config, { searchPath: [FIXTURE_BIN, path.dirname(process.execPath)].join(path.delimiter) })
    const orphans = await readyPids(stateDir, 2)
    process.kill(first.pid, 'SIGKILL')
    await first.process
    for (const pid of orphans) expect(isAlive(pid)).toBe(true)

    const second = spawnAgentCli(cleanup, config)
    const fresh = await waitFor(
      () => {
        const status = readStatusFile(stateDir)
        const pids = enginePidsIn(stateDir)
        const ready = status?.agent_pid === second.pid && status.replicas.every((r) => r.state === 'ready')
        return ready && pids.length === 2 && pids.every((pid) => !orphans.includes(pid)) ? pids : null
      },
      { message: 'the second agent to start its own engines' },
    )
    for (const pid of orphans) expect(isAlive(pid)).toBe(false)
    expect(second.output()).toContain('"event":"agent.orphan_stopped"')
    process.kill(second.pid, 'SIGTERM')
    expect((await second.process).exitCode).toBe(0)
    for (const pid of fresh) expect(isAlive(pid)).toBe(false)
  })

  it('refuses to start a second agent on the same state dir', async () => {
    const stateDir = cleanup.stateDir()
    const config = writeAgentConfig(stateDir, [fakePoolInput('a')])
    const first = spawnAgentCli(cleanup, config)
    const [pid] = await readyPids(stateDir, 1)
    const second = await spawnAgentCli(cleanup, config).process
    expect(second.exitCode).toBe(1)
    expect(second.all).toContain(`llorch-agent: another llorch-agent (pid ${first.pid}) is running with state dir ${stateDir}`)
    expect(isAlive(pid ?? 0)).toBe(true)
    process.kill(first.pid, 'SIGTERM')
    expect((await first.process).exitCode).toBe(0)
  })
})
