import { mkdirSync, readFileSync } from 'node:fs'
import { createLog } from '../../node-agent/log/log.ts'
import { describe, expect, it } from 'vitest'
import { PoolConfig } from '../../node-agent/config/schema.ts'
import type { PoolConfigInput } from '../../node-agent/config/schema.ts'
import { engineLogPath } from '../../node-agent/process/engine-process.ts'
import { EngineExitError } from '../../node-agent/process/exit-error.ts'
import type { Log } from '../../node-agent/log/log.ts'
import { Supervisor } from '../../node-agent/supervisor/supervisor.ts'
import type { AgentReplicaState } from '../../protocol/index.ts'
import { fakeEngineStats, fakePool, fixturePath, isAlive, startFakeEngine, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

function supervise(pool: PoolConfig, { stateDir = cleanup.stateDir(), log }: { stateDir?: string; log?: Log } = {}) {
  const supervisor = new Supervisor({ pool, stateDir, ...(log ? { log } : {}) })
  const states: AgentReplicaState[] = []
  supervisor.on('change', (report) => {
    states.push(report.state)
    for (const pid of supervisor.pids) cleanup.track(pid)
  })
  cleanup.defer(() => supervisor.kill())
  return { supervisor, states, stateDir }
}

const standIn = (pool: Partial<PoolConfigInput> & { engine: PoolConfigInput['engine'] }) =>
  PoolConfig.parse({ id: 'm', health_interval_ms: 20, liveness_interval_ms: 0, stop_grace_ms: 2_000, env: { PATH: fixturePath() }, ...pool })

describe('supervisor start', () => {
  it('becomes ready after a slow load, refusing tasks until then', async () => {
    const { supervisor, states } = supervise(fakePool({ fakeArgs: ['--load-ms', '400'] }))
    const started = supervisor.start()
    await waitFor(() => supervisor.state === 'starting', { message: 'state starting' })
    expect(() => supervisor.acquire()).toThrow('pool "fake-model" is starting on this node')
    const t0 = Date.now()
    await started
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300)
    expect(states).toEqual(['starting', 'ready'])
    const lease = supervisor.acquire()
    expect((await fakeEngineStats(lease.endpoint.baseUrl)).loaded).toBe(true)
    lease.release()
  })

  it('serves when its engine log cannot be written, and says so in the agent log', async () => {
    const stateDir = cleanup.stateDir()
    // A folder where the log file should be: opening it fails as a full or removed disk would.
    mkdirSync(engineLogPath(stateDir, 'fake-model'), { recursive: true })
    let lines = ''
    const log = createLog({ destination: { write: (line: string) => void (lines += line) } })
    const { supervisor } = supervise(fakePool(), { stateDir, log })
    await supervisor.start()
    expect(supervisor.state).toBe('ready')
    await waitFor(() => lines.includes('"event":"engine.log_unwritable"'), { message: 'the unwritable log reported' })
    const lease = supervisor.acquire()
    expect((await fakeEngineStats(lease.endpoint.baseUrl)).loaded).toBe(true)
    lease.release()
  })

  it('fails with the log tail when the engine is not ready before the start timeout', async () => {
    const { supervisor, states } = supervise(fakePool({ fakeArgs: ['--load-ms', '600000'], start_timeout_ms: 1_500, restart: { max_crashes: 1 } }))
    const failure = await supervisor.start().then(
      () => null,
      (error: unknown) => error,
    )
    expect(failure).toBeInstanceOf(EngineExitError)
    expect(failure).toMatchObject({ terminationReason: 'start-timeout', exitCode: 0 })
    expect(states).toEqual(['starting', 'failed'])
    expect(supervisor.reason).toContain('did not become ready within 1500 ms (start timeout) and was stopped')
    expect(supervisor.reason).toContain('--- last output ---\nfake-engine: loading model "fake-model" (load-ms 600000)')
    expect(supervisor.reason).toContain('SIGTERM received, shutting down')
    expect(supervisor.pids).toEqual([])
  })

  it('fails with the exit code and stderr when the engine exits while starting', async () => {
    const { supervisor } = supervise(fakePool({ fakeArgs: ['--fail-start', '--exit-code', '7'], restart: { max_crashes: 1 } }))
    await expect(supervisor.start()).rejects.toThrow(/exited with code 7 after [\d.]+ s/)
    expect(supervisor.state).toBe('failed')
    expect(supervisor.reason).toMatch(/exited with code 7 .*circuit breaker open after 1 crashes/)
    expect(supervisor.reason).toContain('fake-engine: failing at start as asked (--fail-start), exit code 7')
  })

  it('says so when the engine binary is not installed', async () => {
    const { supervisor } = supervise(fakePool({ command: ['/nonexistent/llama-server', '--port', '{port}'], restart: { max_crashes: 1 } }))
    await expect(supervisor.start()).rejects.toThrow('could not be started: spawn /nonexistent/llama-server ENOENT')
  })

  it('writes the engine output to a per-pool log file and keeps a PID file while it runs', async () => {
    const { supervisor, stateDir } = supervise(fakePool())
    await supervisor.start()
    const pid = supervisor.pid ?? 0
    expect(readFileSync(`${stateDir}/engines/fake-model.${pid}.pid`, 'utf8')).toContain(`"pid":${pid}`)
    await supervisor.drain({ deadlineMs: 1_000 })
    expect(isAlive(pid)).toBe(false)
    const log = readFileSync(engineLogPath(stateDir, 'fake-model'), 'utf8')
    expect(log).toContain(`llorch-agent started pid ${pid}`)
    expect(log).toContain('{"event":"listening"')
    expect(() => readFileSync(`${stateDir}/engines/fake-model.${pid}.pid`)).toThrow(/ENOENT/)
  })
})

describe('engine kinds', () => {
  it('runs llama-server with the pool slots and GPUs and reads its build', async () => {
    const { supervisor, stateDir } = supervise(
      standIn({ engine: 'llamacpp', model: '/models/tiny.gguf', slots: 3, gpus: [1], gpu_layers: 99, args: ['--load-ms', '100'] }),
    )
    await supervisor.start()
    expect(supervisor.report()).toMatchObject({ state: 'ready', engine: 'llamacpp', slots: 3, engine_version: 'b0000-fake' })
    const props = await fetch(`${supervisor.acquire().endpoint.baseUrl}/props`).then((r) => r.json())
    expect(props).toMatchObject({ total_slots: 3 })
    expect(readFileSync(engineLogPath(stateDir, 'm'), 'utf8')).toContain('llama-server (stand-in): CUDA_VISIBLE_DEVICES=1')
  })

  it('waits for vLLM, which refuses connections until its model is loaded', async () => {
    const { supervisor } = supervise(standIn({ engine: 'vllm', model: 'org/model', args: ['--load-ms', '300'] }))
    await supervisor.start()
    const lease = supervisor.acquire()
    const models = await fetch(`${lease.endpoint.baseUrl}/v1/models`).then((r) => r.json())
    expect(models).toMatchObject({ data: [{ id: 'm' }] })
    expect(supervisor.report().engine_version).toBe('0.0.0-fake-vllm')
    lease.release()
  })

  it('starts ollama serve when asked and preloads the model with keep_alive', async () => {
    const { supervisor } = supervise(standIn({ engine: 'ollama', model: 'qwen2.5:0.5b', spawn: true, port: 'auto', keep_alive: '30m' }))
    await supervisor.start()
    const lease = supervisor.acquire()
    expect(lease.endpoint.modelName).toBe('qwen2.5:0.5b')
    expect((await fakeEngineStats(lease.endpoint.baseUrl)).preloads).toEqual([{ model: 'qwen2.5:0.5b', keep_alive: '30m' }])
    lease.release()
  })

  it('uses a running Ollama: preloads on start and unloads on drain without stopping it', async () => {
    const ollama = await startFakeEngine([], cleanup.track)
    const { supervisor } = supervise(standIn({ engine: 'ollama', model: 'llama3.2', port: ollama.port }))
    await supervisor.start()
    expect(supervisor.pids).toEqual([])
    await supervisor.drain({ deadlineMs: 1_000 })
    expect((await ollama.stats()).preloads).toEqual([
      { model: 'llama3.2', keep_alive: -1 },
      { model: 'llama3.2', keep_alive: 0 },
    ])
    expect(isAlive(ollama.pid)).toBe(true)
  })

  it('only health-checks an already-running OpenAI-compatible server', async () => {
    const server = await startFakeEngine(['--load-ms', '300'], cleanup.track)
    const { supervisor, states } = supervise(PoolConfig.parse({ id: 'm', engine: 'openai', port: server.port, health_interval_ms: 20 }))
    await supervisor.start()
    expect(states).toEqual(['starting', 'ready'])
    expect(supervisor.pids).toEqual([])
    await supervisor.drain({ deadlineMs: 0 })
    expect(isAlive(server.pid)).toBe(true)
  })
})
