import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { create } from 'tar'
import { afterEach, describe, expect, it } from 'vitest'
import { PoolConfig } from '../../node-agent/config/schema.ts'
import { engineLogPath } from '../../node-agent/process/engine-process.ts'
import { Provisioner } from '../../node-agent/provision/provisioner.ts'
import { Supervisor } from '../../node-agent/supervisor/supervisor.ts'
import type { AgentReplicaState } from '../../protocol/index.ts'
import { modelBytes, sha256Of, startHubServer } from '../fixtures/hub-server.ts'
import type { HubServer } from '../fixtures/hub-server.ts'
import { FAKE_ENGINE, FIXTURE_BIN, fakeEngineCommand, fixturePath, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()
const COMMIT = '4'.repeat(40)
const servers: HubServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

function supervise(pool: PoolConfig, server: HubServer): { supervisor: Supervisor; states: AgentReplicaState[]; stateDir: string } {
  const stateDir = cleanup.stateDir()
  const provisioner = new Provisioner({ cacheDir: path.join(stateDir, 'models'), hfEndpoint: server.url, hfToken: null, maxCacheBytes: null, pools: [pool] })
  const supervisor = new Supervisor({ pool, stateDir, provisioner })
  const states: AgentReplicaState[] = []
  supervisor.on('change', (report) => {
    states.push(report.state)
    for (const pid of supervisor.pids) cleanup.track(pid)
  })
  cleanup.defer(() => supervisor.kill())
  return { supervisor, states, stateDir }
}

const standIn = { health_interval_ms: 20, liveness_interval_ms: 0, stop_grace_ms: 2_000, env: { PATH: fixturePath() } }

describe('a drain while downloading', () => {
  it('stops the download at once, ends stopped, and keeps the bytes for the next start to resume', async () => {
    const model = modelBytes(2_000_000, 43)
    const server = await startHubServer({ repos: { 'org/tiny': { commit: COMMIT, refs: { main: COMMIT }, files: { 'tiny.gguf': model } } } })
    servers.push(server)
    server.knobs.bytesPerSecond = 200_000
    const pool = PoolConfig.parse({
      id: 'd',
      engine: 'command',
      command: fakeEngineCommand(['--model-file', '{model}']),
      model: { hf: 'org/tiny', file: 'tiny.gguf' },
      ...standIn,
    })
    const { supervisor, states, stateDir } = supervise(pool, server)
    const started = supervisor.start().catch((error: unknown) => error)
    await waitFor(() => (supervisor.report().download?.bytes_done ?? 0) > 100_000, { timeoutMs: 15_000, message: 'some bytes fetched' })
    // The rest would take half an hour: a drain that waited for it would time the test out.
    server.knobs.bytesPerSecond = 1_000
    await supervisor.drain({ deadlineMs: 0 })
    expect(await started).toMatchObject({ code: 'cancelled' })
    expect(states).toEqual(['downloading', 'stopped'])
    const partial = path.join(stateDir, 'models', 'models--org--tiny', 'blobs', `${sha256Of(model)}.incomplete`)
    expect(statSync(partial).size).toBeGreaterThan(100_000)

    server.knobs.bytesPerSecond = 0
    await supervisor.start()
    expect(supervisor.state).toBe('ready')
    const ranges = server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/content/')).map((r) => r.range)
    expect(ranges[0]).toBeNull()
    expect(ranges[1]).toMatch(/^bytes=\d+-$/)
  })
})

describe('engines started on fetched files', () => {
  it('serves a vLLM pool from a fetched snapshot, offline, from the cache', async () => {
    const server = await startHubServer({
      repos: {
        'org/tiny': {
          commit: COMMIT,
          refs: { main: COMMIT },
          files: { 'config.json': Buffer.from('{"model_type":"tiny"}'), 'model.safetensors': modelBytes(50_000, 41) },
        },
      },
    })
    servers.push(server)
    const pool = PoolConfig.parse({ id: 'v', engine: 'vllm', model: { hf: 'org/tiny' }, ...standIn })
    const { supervisor, states, stateDir } = supervise(pool, server)
    await supervisor.start()
    expect(states).toEqual(['downloading', 'starting', 'ready'])
    const cache = path.join(stateDir, 'models')
    expect(readFileSync(engineLogPath(stateDir, 'v'), 'utf8')).toContain(
      `vllm (stand-in): serving ${path.join(cache, 'models--org--tiny', 'snapshots', COMMIT)}, CUDA_VISIBLE_DEVICES=unset HF_HUB_OFFLINE=1 HF_HUB_CACHE=${cache}`,
    )
  })

  it('runs llama-server from a fetched release archive', async () => {
    const dir = cleanup.stateDir()
    mkdirSync(path.join(dir, 'src', 'build', 'bin'), { recursive: true })
    // The stand-in llama-server, as a release would ship it.
    const script = readFileSync(path.join(FIXTURE_BIN, 'llama-server'), 'utf8').replace('"$here/../fake-engine.ts"', JSON.stringify(FAKE_ENGINE))
    writeFileSync(path.join(dir, 'src', 'build', 'bin', 'llama-server'), script, { mode: 0o755 })
    const archive = path.join(dir, 'llama.tar.gz')
    await create({ gzip: true, file: archive, cwd: path.join(dir, 'src') }, ['build'])
    const bytes = readFileSync(archive)
    const server = await startHubServer({ files: { 'llama.tar.gz': bytes } })
    servers.push(server)
    const binary = { url: `${server.url}/files/llama.tar.gz`, sha256: sha256Of(bytes), path: 'build/bin/llama-server' }
    const pool = PoolConfig.parse({ id: 'l', engine: 'llamacpp', model: '/models/tiny.gguf', binary, ...standIn })
    const { supervisor, states, stateDir } = supervise(pool, server)
    await supervisor.start()
    expect(states).toEqual(['downloading', 'starting', 'ready'])
    expect(supervisor.report().engine_version).toBe('b0000-fake')
    expect(readFileSync(engineLogPath(stateDir, 'l'), 'utf8')).toContain(
      `${path.join(stateDir, 'models', 'engines', 'unpacked', sha256Of(bytes), 'build', 'bin', 'llama-server')}`,
    )
  })
})
