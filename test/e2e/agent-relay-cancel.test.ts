import { describe, expect, it } from 'vitest'
import { LlorchError } from '../../protocol/index.ts'
import { chatBody, collectEvents, seqsOf, testAgent, textOf } from '../support/agents.ts'
import { fakeEngineStats, fakePool, useProcessCleanup, waitFor } from '../support/processes.ts'

const cleanup = useProcessCleanup()

describe('running tasks through the agent', () => {
  it('streams a task: started, token batches in order, then the end with usage', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--tokens', '12', '--tokens-per-second', '400'] })])
    await agent.start()
    const events = await collectEvents(agent.runTask({ taskId: 't1', pool: 'fake-model', endpoint: 'chat', body: chatBody }))
    expect(events[0]).toEqual({ kind: 'started' })
    expect(textOf(events)).toBe(Array.from({ length: 12 }, (_, i) => (i === 0 ? 'tok0' : ` tok${i}`)).join(''))
    const seqs = seqsOf(events)
    expect(seqs).toEqual(seqs.map((_, i) => i))
    expect(events.at(-1)).toEqual({ kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 2, completion_tokens: 12, total_tokens: 14 } })
    expect(agent.runningTasks()).toEqual([])
    expect(agent.replicas()[0]?.slots_busy).toBe(0)
  })

  it('cancel stops the engine generation and frees the slot', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--tokens', '100000', '--tokens-per-second', '200'] })])
    await agent.start()
    const run = agent.runTask({ taskId: 'long', pool: 'fake-model', endpoint: 'chat', body: chatBody })
    const baseUrl = agent.supervisor('fake-model').endpoint?.baseUrl ?? ''
    const events = await collectEvents(run, (event) => {
      if (event.kind === 'deltas') {
        expect(agent.runningTasks()).toEqual(['long'])
        expect(agent.cancel('long')).toBe(true)
      }
    })
    expect(events.at(-1)).toEqual({ kind: 'error', code: 'cancelled', message: 'task "long" was cancelled', retriable: false })
    const stats = await waitFor(
      async () => {
        const s = await fakeEngineStats(baseUrl)
        return s.aborted === 1 && s.active === 0 ? s : null
      },
      { message: 'the fake engine to record the abort' },
    )
    expect(stats.completed).toBe(0)
    expect(agent.runningTasks()).toEqual([])
    expect(agent.cancel('long')).toBe(false)
  })

  it('cancels through the caller signal as well', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--hang'] })])
    await agent.start()
    const controller = new AbortController()
    const events = await collectEvents(
      agent.runTask({ taskId: 'hang', pool: 'fake-model', endpoint: 'completions', body: { model: 'x', prompt: 'p' }, signal: controller.signal }),
      (event) => {
        if (event.kind === 'started') controller.abort(new LlorchError('cancelled', 'client disconnected'))
      },
    )
    expect(events).toEqual([{ kind: 'started' }, { kind: 'error', code: 'cancelled', message: 'client disconnected', retriable: false }])
  })

  it('refuses a task with a typed error when no slot is free, the replica is not ready, or the pool is unknown', async () => {
    const agent = testAgent(cleanup, [fakePool({ slots: 1, fakeArgs: ['--hang'] }), fakePool({ id: 'later', preload: 'on-demand' })])
    await agent.start()
    const first = agent.runTask({ taskId: 'a', pool: 'fake-model', endpoint: 'chat', body: chatBody })
    const refusal = (fn: () => unknown) => {
      try {
        fn()
      } catch (error) {
        return error instanceof LlorchError ? { code: error.code, message: error.message, retriable: error.retriable } : error
      }
      return null
    }
    expect(refusal(() => agent.runTask({ taskId: 'b', pool: 'fake-model', endpoint: 'chat', body: chatBody }))).toEqual({
      code: 'queue_full',
      message: 'all 1 slots of pool "fake-model" are busy on this node',
      retriable: true,
    })
    expect(refusal(() => agent.runTask({ taskId: 'a', pool: 'fake-model', endpoint: 'chat', body: chatBody }))).toMatchObject({ code: 'conflict' })
    expect(refusal(() => agent.runTask({ taskId: 'c', pool: 'later', endpoint: 'chat', body: chatBody }))).toEqual({
      code: 'engine_unavailable',
      message: 'pool "later" is stopped on this node',
      retriable: true,
    })
    expect(refusal(() => agent.runTask({ taskId: 'd', pool: 'nope', endpoint: 'chat', body: chatBody }))).toMatchObject({ code: 'model_not_found' })
    expect(agent.replicas().map((r) => [r.pool, r.state, r.slots_busy])).toEqual([
      ['fake-model', 'ready', 1],
      ['later', 'stopped', 0],
    ])
    agent.cancel('a')
    await collectEvents(first)
    await agent.preload('later')
    expect(agent.replicas().map((r) => r.state)).toEqual(['ready', 'ready'])
  })

  it('fails the running task when the engine crashes mid-stream, then restarts the engine', async () => {
    const agent = testAgent(cleanup, [fakePool({ fakeArgs: ['--tokens', '50', '--tokens-per-second', '500', '--crash-after-tokens', '5'] })])
    await agent.start()
    const firstPid = agent.supervisor('fake-model').pid
    const events = await collectEvents(agent.runTask({ taskId: 'x', pool: 'fake-model', endpoint: 'chat', body: chatBody }))
    expect(textOf(events).startsWith('tok0')).toBe(true)
    const last = events.at(-1)
    expect(last).toMatchObject({ kind: 'error', retriable: false })
    // Whichever the agent notices first: the closed stream or the engine's exit.
    expect(['engine_error', 'engine_unavailable']).toContain(last?.kind === 'error' ? last.code : null)
    expect(agent.runningTasks()).toEqual([])
    await waitFor(() => agent.replicas()[0]?.state === 'ready' && agent.supervisor('fake-model').pid !== firstPid, { message: 'the restarted engine' })
  })
})
