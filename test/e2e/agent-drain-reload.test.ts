import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { engineLogPath } from '../../node-agent/process/engine-process.ts'
import { resolvePort } from '../../node-agent/process/port.ts'
import type { AgentReplicaState, TaskEvent } from '../../protocol/index.ts'
import { chatBody, collectEvents, testAgent, textOf } from '../support/agents.ts'
import { fakeEngineCommand, fakeEngineStats, fakePool, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

function statesOf(agent: ReturnType<typeof testAgent>): AgentReplicaState[] {
  const states: AgentReplicaState[] = []
  agent.onReplicaChange((report) => states.push(report.state))
  return states
}

const fullText = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'tok0' : ` tok${i}`)).join('')

describe('drain', () => {
  it('waits for in-flight work, then stops the process', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--tokens', '30', '--tokens-per-second', '100'] })])
    await agent.start()
    const states = statesOf(agent)
    const pid = agent.supervisor('fake-model').pid ?? 0
    const order: string[] = []
    let drained: Promise<void> | null = null
    const events = await collectEvents(agent.runTask({ taskId: 't', pool: 'fake-model', endpoint: 'chat', body: chatBody }), (event) => {
      if (event.kind === 'deltas' && drained === null) {
        drained = agent.drain({ pool: 'fake-model', deadlineMs: 30_000 }).then(() => void order.push('drained'))
      }
    })
    order.push('task ended')
    await drained
    expect(order).toEqual(['task ended', 'drained'])
    expect(textOf(events)).toBe(fullText(30))
    expect(events.at(-1)).toMatchObject({ kind: 'end', finish_reason: 'stop' })
    expect(states).toEqual(['draining', 'stopped'])
    expect(isAlive(pid)).toBe(false)
  })

  it('refuses new tasks while draining', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--hang'] })])
    await agent.start()
    const task = collectEvents(agent.runTask({ taskId: 'held', pool: 'fake-model', endpoint: 'chat', body: chatBody }))
    const drained = agent.drain({ pool: 'fake-model', deadlineMs: 60_000 })
    await waitFor(() => agent.replicas()[0]?.state === 'draining', { message: 'draining' })
    expect(() => agent.runTask({ taskId: 'new', pool: 'fake-model', endpoint: 'chat', body: chatBody })).toThrow('pool "fake-model" is draining on this node')
    agent.cancel('held')
    await task
    await drained
    expect(agent.replicas()[0]?.state).toBe('stopped')
  })

  it('aborts tasks still running at the deadline, then stops the engine', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--tokens', '100000', '--tokens-per-second', '200'] })])
    await agent.start()
    const pid = agent.supervisor('fake-model').pid ?? 0
    let drained: Promise<void> | null = null
    const events = await collectEvents(agent.runTask({ taskId: 't', pool: 'fake-model', endpoint: 'chat', body: chatBody }), (event) => {
      if (event.kind === 'deltas') drained ??= agent.drain({ pool: 'fake-model', deadlineMs: 30 })
    })
    await drained
    expect(events.at(-1)).toEqual({
      kind: 'error',
      code: 'engine_unavailable',
      message: 'pool "fake-model" was drained before the task finished (deadline 30 ms)',
      retriable: false,
    })
    expect(isAlive(pid)).toBe(false)
    expect(agent.runningTasks()).toEqual([])
  })

  it('sends SIGKILL after the grace to an engine that ignores SIGTERM', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--ignore-sigterm'], stop_grace_ms: 100 })])
    await agent.start()
    const pid = agent.supervisor('fake-model').pid ?? 0
    await agent.drain({ pool: 'fake-model', deadlineMs: 0 })
    expect(isAlive(pid)).toBe(false)
    const log = readFileSync(engineLogPath(agent.config.state_dir, 'fake-model'), 'utf8')
    expect(log).toContain('ignoring SIGTERM as asked')
    expect(log).toContain('exited: code -, signal SIGKILL')
  })
})

describe('reload', () => {
  it('switches to a new engine with no failed request while a stream is running', async () => {
    const agent = testAgent(cleanup, [fakePool({ slots: 4, fakeArgs: ['--tokens', '40', '--tokens-per-second', '100'] })])
    await agent.start()
    const states = statesOf(agent)
    const supervisor = agent.supervisor('fake-model')
    const oldPid = supervisor.pid ?? 0
    const oldUrl = supervisor.endpoint?.baseUrl ?? ''

    const long = collectEvents(agent.runTask({ taskId: 'long', pool: 'fake-model', endpoint: 'chat', body: chatBody }))
    await waitFor(async () => (await fakeEngineStats(oldUrl)).active === 1, { message: 'the long stream to start' })
    let reloading = true
    const reloaded = agent.reload('fake-model').finally(() => (reloading = false))
    // Keep sending short tasks for as long as the reload runs: none may fail.
    const short: Promise<TaskEvent[]>[] = []
    let n = 0
    while (reloading) {
      if (agent.runningTasks().length < 3) {
        short.push(
          collectEvents(agent.runTask({ taskId: `s${n++}`, pool: 'fake-model', endpoint: 'completions', body: { model: 'x', prompt: 'p', max_tokens: 2 } })),
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await reloaded
    const newPid = supervisor.pid ?? 0
    expect(newPid).not.toBe(oldPid)
    expect(isAlive(oldPid)).toBe(false)
    expect(isAlive(newPid)).toBe(true)
    const longEvents = await long
    expect(textOf(longEvents)).toBe(fullText(40))
    expect(longEvents.at(-1)).toMatchObject({ kind: 'end', finish_reason: 'stop' })
    for (const events of await Promise.all(short)) expect(events.at(-1)).toMatchObject({ kind: 'end', finish_reason: 'length' })
    expect(short.length).toBeGreaterThan(0)
    expect(states).toEqual([])
    expect(agent.replicas()[0]?.state).toBe('ready')
  })

  it('drains first and starts again when the engine has a fixed port', async () => {
    const port = await resolvePort({ port: 'auto', host: '127.0.0.1' })
    const agent = testAgent(cleanup, [fakePool({ port })])
    await agent.start()
    const states = statesOf(agent)
    await agent.reload('fake-model')
    expect(states).toEqual(['draining', 'stopped', 'starting', 'ready'])
    expect(agent.supervisor('fake-model').endpoint?.baseUrl).toBe(`http://127.0.0.1:${port}`)
  })

  it('keeps the old engine serving when the new one fails to start', async () => {
    const broken = path.join(cleanup.stateDir(), 'broken')
    // Once the marker exists, new engines exit at start.
    const command = [
      'sh',
      '-c',
      `if test -f ${broken}; then exec "$0" "$@" --fail-start --exit-code 5; else exec "$0" "$@"; fi`,
      ...fakeEngineCommand(['--tokens', '3']),
    ]
    const agent = testAgent(cleanup, [fakePool({ command })])
    await agent.start()
    const supervisor = agent.supervisor('fake-model')
    const oldPid = supervisor.pid
    writeFileSync(broken, '')
    await expect(agent.reload('fake-model')).rejects.toThrow(/exited with code 5/)
    expect(supervisor.pid).toBe(oldPid)
    expect(supervisor.pids).toEqual([oldPid])
    expect(agent.replicas()[0]?.state).toBe('ready')
    const events = await collectEvents(agent.runTask({ taskId: 'after', pool: 'fake-model', endpoint: 'chat', body: chatBody }))
    expect(events.at(-1)).toMatchObject({ kind: 'end' })
  })
})
