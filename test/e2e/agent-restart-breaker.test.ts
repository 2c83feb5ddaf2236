import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { PoolConfig } from '../../node-agent/config/schema.ts'
import { Supervisor } from '../../node-agent/supervisor/supervisor.ts'
import type { RestartScheduled } from '../../node-agent/supervisor/supervisor.ts'
import type { AgentReplicaState, ReplicaReport } from '../../protocol/index.ts'
import { FakeEngineStats, fakeEngineCommand, fakePool, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

function supervise(pool: PoolConfig) {
  const supervisor = new Supervisor({ pool, stateDir: cleanup.stateDir(), random: () => 1 })
  const states: AgentReplicaState[] = []
  const reports: ReplicaReport[] = []
  const restarts: RestartScheduled[] = []
  const pids = new Set<number>()
  supervisor.on('change', (report) => {
    states.push(report.state)
    reports.push(report)
    for (const pid of supervisor.pids) {
      pids.add(pid)
      cleanup.track(pid)
    }
  })
  supervisor.on('restart', (r) => restarts.push(r))
  cleanup.defer(() => supervisor.kill())
  return { supervisor, states, reports, restarts, pids }
}

describe('restart and circuit breaker', () => {
  it('restarts a crashed engine with growing delays and opens the breaker after 3 crashes within the window', async () => {
    const { supervisor, states, reports, restarts, pids } = supervise(fakePool({ fakeArgs: ['--crash-after-ms', '150', '--exit-code', '3'] }))
    let breakerOpened = false
    supervisor.on('breaker-open', () => (breakerOpened = true))
    await supervisor.start()
    await waitFor(() => breakerOpened, { message: 'the breaker to open' })

    expect(restarts.map((r) => [r.attempt, r.ceilingMs, r.delayMs])).toEqual([
      [0, 5, 5],
      [1, 10, 10],
    ])
    // Each engine crashes 150 ms after loading (normally once ready; under heavy load maybe before).
    expect(states.filter((s) => s === 'starting')).toHaveLength(3)
    expect(states.filter((s) => s === 'failed')).toHaveLength(3)
    expect(states.at(-1)).toBe('failed')
    expect(reports.filter((r) => r.state === 'failed').map((r) => r.breaker_open)).toEqual([false, false, true])
    expect(supervisor.report().breaker_open).toBe(true)
    expect(pids.size).toBe(3)
    expect(supervisor.reason).toMatch(
      /exited with code 3 after [\d.]+ s; circuit breaker open after 3 crashes within 60000 ms; no more restarts until a reload/,
    )
    expect(supervisor.reason).toContain('crashing 150 ms after load as asked')
    expect(supervisor.restartPending).toBe(false)
    for (const pid of pids) expect(isAlive(pid)).toBe(false)
    await expect(supervisor.start()).rejects.toThrow('circuit breaker is open; reload it to try again')
  })

  it('reports the restart delay and the crash count while it waits to restart', async () => {
    const { supervisor, restarts } = supervise(fakePool({ fakeArgs: ['--crash-after-ms', '100'], restart: { initial_delay_ms: 60_000, max_crashes: 5 } }))
    await supervisor.start()
    await waitFor(() => supervisor.state === 'failed', { message: 'the crash' })
    expect(supervisor.restartPending).toBe(true)
    expect(supervisor.report().breaker_open).toBe(false)
    expect(restarts).toEqual([{ pool: 'fake-model', attempt: 0, crashes: 1, delayMs: 60_000, ceilingMs: 60_000 }])
    expect(supervisor.reason).toMatch(/exited with code 1 after [\d.]+ s; restarting in 60000 ms \(crash 1 of 5 allowed within 600000 ms\)/)
    await supervisor.drain({ deadlineMs: 0 })
    expect(supervisor.state).toBe('stopped')
    expect(supervisor.restartPending).toBe(false)
  })

  it('closes the breaker on reload and starts the engine again', async () => {
    const marker = path.join(cleanup.stateDir(), 'model-ready')
    // Fails until the marker file exists, like an engine whose model file is not there yet.
    const command = ['sh', '-c', `test -f ${marker} && exec "$0" "$@"; echo "model file missing" >&2; exit 4`, ...fakeEngineCommand()]
    const { supervisor, restarts } = supervise(fakePool({ command, restart: { max_crashes: 1 } }))
    await expect(supervisor.start()).rejects.toThrow(/exited with code 4/)
    expect(supervisor.reason).toContain('circuit breaker open after 1 crashes')
    expect(supervisor.reason).toContain('model file missing')
    await expect(supervisor.start()).rejects.toThrow('circuit breaker is open')
    expect(supervisor.report().breaker_open).toBe(true)
    writeFileSync(marker, '')
    await supervisor.reload()
    expect(supervisor.state).toBe('ready')
    expect(supervisor.report().breaker_open).toBe(false)
    expect(restarts).toEqual([])
  })

  it('restarts a ready engine that stops answering health checks', async () => {
    const { supervisor, states, pids } = supervise(
      fakePool({ fakeArgs: ['--unhealthy-after-ms', '300'], liveness_interval_ms: 20, liveness_failures: 2, restart: { initial_delay_ms: 60_000 } }),
    )
    await supervisor.start()
    const first = supervisor.pid ?? 0
    await waitFor(() => supervisor.state === 'failed', { message: 'the replica to fail its health checks' })
    expect(states).toEqual(['starting', 'ready', 'failed'])
    expect(supervisor.reason).toMatch(/failed 2 health checks in a row \(last: HTTP 503\); restarting in 60000 ms/)
    expect(supervisor.reason).toContain('health now answers 503')
    await waitFor(() => !isAlive(first), { message: 'the unhealthy engine to be stopped' })
    expect(pids.size).toBe(1)
  })

  it('restarts an engine whose tasks missed two deadlines in a row as hung, and has it ready again once a one-token probe generation answers', async () => {
    const { supervisor, states } = supervise(fakePool({ fakeArgs: ['--tokens-per-second', '5'], restart: { initial_delay_ms: 10, max_delay_ms: 10 } }))
    await supervisor.start()
    for (const deadline of ['first_token', 'idle'] as const) {
      const lease = supervisor.acquire()
      supervisor.missedDeadline(lease, deadline)
      lease.release()
    }
    expect(supervisor.reason).toMatch(/^hung: no first token from 1 task, silent mid-stream in 1 task; restarting in 10 ms/)
    await waitFor(() => supervisor.state === 'ready' || null, { message: 'ready again' })
    expect(states).toEqual(['starting', 'ready', 'failed', 'starting', 'ready'])
    // The probe: one generation the new engine answered before it counted as ready.
    const stats = FakeEngineStats.parse(await (await fetch(`${supervisor.endpoint?.baseUrl}/fake/stats`)).json())
    expect(stats.completed).toBe(1)
  })
})
