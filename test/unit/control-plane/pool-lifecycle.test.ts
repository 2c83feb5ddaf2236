import { describe, expect, it } from 'vitest'
import {
  COMMAND_SETTLE_MS,
  mayStart,
  placementState,
  planLifecycle,
  predictedWaitMs,
  startable,
  startsOnUncordon,
} from '../../../control-plane/pool/lifecycle.ts'
import type { LifecycleInput, LifecycleReplica } from '../../../control-plane/pool/lifecycle.ts'
import { ROLLING_STEP_TIMEOUT_MS, advanceReload, beginReload } from '../../../control-plane/pool/rolling-reload.ts'
import type { RolloutReplica } from '../../../control-plane/pool/rolling-reload.ts'

const NOW = 1_000_000

function replica(nodeId: string, overrides: Partial<LifecycleReplica> = {}): LifecycleReplica {
  return { nodeId, state: 'ready', slots: 1, busy: 0, cordoned: false, activeAt: NOW, sent: null, ...overrides }
}

function plan(overrides: Partial<LifecycleInput>) {
  return planLifecycle({
    policy: { preload_mode: 'on-demand', idle_drain_ms: null, scale_out_wait_ms: 10_000 },
    replicas: [],
    queued: 0,
    averageTaskMs: 1_000,
    maintenance: false,
    rolling: false,
    now: NOW,
    ...overrides,
  })
}

describe('on-demand start', () => {
  it('starts the first stopped replica when a task waits and none is ready or starting', () => {
    expect(plan({ queued: 1, replicas: [replica('a', { state: 'stopped' }), replica('b', { state: 'stopped' })] })).toEqual({
      start: ['a'],
      stop: [],
      nextAt: null,
    })
  })

  it('starts nothing while one is starting, or was told to start a moment ago', () => {
    expect(plan({ queued: 1, replicas: [replica('a', { state: 'starting' }), replica('b', { state: 'stopped' })] }).start).toEqual([])
    const told = plan({
      queued: 1,
      replicas: [replica('a', { state: 'stopped', sent: { command: 'preload', at: NOW - 1_000 } }), replica('b', { state: 'stopped' })],
    })
    expect(told).toEqual({ start: [], stop: [], nextAt: NOW - 1_000 + COMMAND_SETTLE_MS })
  })

  it('tells a replica again once its start command has had time to settle', () => {
    const stale = plan({ queued: 1, replicas: [replica('a', { state: 'stopped', sent: { command: 'preload', at: NOW - COMMAND_SETTLE_MS } })] })
    expect(stale.start).toEqual(['a'])
  })

  it('starts nothing on a cordoned node or while the pool is drained for maintenance', () => {
    expect(plan({ queued: 1, replicas: [replica('a', { state: 'stopped', cordoned: true })] }).start).toEqual([])
    expect(plan({ queued: 1, maintenance: true, replicas: [replica('a', { state: 'stopped' })] })).toEqual({ start: [], stop: [], nextAt: null })
  })
})

describe('scale out', () => {
  it('starts one more stopped replica when the predicted wait exceeds the threshold', () => {
    // 30 tasks of 1 s on 2 slots: 15 s predicted, over 10 s.
    const replicas = [replica('a', { slots: 2, busy: 2 }), replica('b', { state: 'stopped' }), replica('c', { state: 'stopped' })]
    expect(plan({ queued: 30, replicas }).start).toEqual(['b'])
  })

  it('waits when the predicted wait is under the threshold, or a replica is already starting', () => {
    expect(plan({ queued: 10, replicas: [replica('a', { slots: 2, busy: 2 }), replica('b', { state: 'stopped' })] }).start).toEqual([])
    expect(
      plan({ queued: 30, replicas: [replica('a', { slots: 2, busy: 2 }), replica('b', { state: 'starting' }), replica('c', { state: 'stopped' })] }).start,
    ).toEqual([])
  })

  it('predicts the wait from the queue, the ready slots and the average task time', () => {
    expect(predictedWaitMs({ queued: 0, readySlots: 0, averageTaskMs: 1_000 })).toBe(0)
    expect(predictedWaitMs({ queued: 4, readySlots: 0, averageTaskMs: 1_000 })).toBe(Infinity)
    expect(predictedWaitMs({ queued: 4, readySlots: 2, averageTaskMs: 1_000 })).toBe(2_000)
  })
})

describe('idle drain', () => {
  const policy = { preload_mode: 'on-demand', idle_drain_ms: 500, scale_out_wait_ms: 10_000 } as const

  it('drains a replica idle for idle_drain_ms, and looks again when the next one is due', () => {
    const replicas = [replica('a', { activeAt: NOW - 500 }), replica('b', { activeAt: NOW - 200 })]
    expect(plan({ policy, replicas })).toEqual({ start: [], stop: ['a'], nextAt: NOW + 300 })
  })

  it('lets an on-demand pool go to zero and keeps one ready replica of an eager pool, the last to work', () => {
    const replicas = [replica('a', { activeAt: NOW - 900 }), replica('b', { activeAt: NOW - 600 })]
    expect(plan({ policy, replicas }).stop).toEqual(['a', 'b'])
    expect(plan({ policy: { ...policy, preload_mode: 'eager' }, replicas })).toEqual({ start: [], stop: ['a'], nextAt: null })
  })

  it('drains nothing busy, nothing while tasks wait or a rolling reload runs, and nothing without idle_drain_ms', () => {
    const idle = replica('a', { activeAt: NOW - 900 })
    expect(plan({ policy, replicas: [replica('a', { activeAt: NOW - 900, busy: 1 })] }).stop).toEqual([])
    expect(plan({ policy, queued: 1, replicas: [idle] }).stop).toEqual([])
    expect(plan({ policy, rolling: true, replicas: [idle] }).stop).toEqual([])
    expect(plan({ replicas: [idle] }).stop).toEqual([])
  })

  it('does not drain a replica it already told to drain', () => {
    const told = replica('a', { activeAt: NOW - 900, sent: { command: 'drain', at: NOW - 10 } })
    expect(plan({ policy, replicas: [told] })).toEqual({ start: [], stop: [], nextAt: NOW - 10 + COMMAND_SETTLE_MS })
  })
})

describe('uncordon', () => {
  const at = (maintenance = false) => ({ policy: { preload_mode: 'eager' as const }, maintenance, now: NOW })

  it('starts the stopped replica of an eager pool at once', () => {
    expect(startsOnUncordon(replica('a', { state: 'stopped' }), at())).toBe(true)
  })

  it('leaves an on-demand pool to its next request, and starts nothing running, already told to start, or under a maintenance drain', () => {
    expect(startsOnUncordon(replica('a', { state: 'stopped' }), { ...at(), policy: { preload_mode: 'on-demand' } })).toBe(false)
    expect(startsOnUncordon(replica('a'), at())).toBe(false)
    expect(startsOnUncordon(replica('a', { state: 'stopped', sent: { command: 'preload', at: NOW - 1_000 } }), at())).toBe(false)
    expect(startsOnUncordon(replica('a', { state: 'stopped' }), at(true))).toBe(false)
  })
})

describe('mayStart and startable', () => {
  it('counts a stopped replica already told to start as one the pool may have running, but not as one to tell again', () => {
    const told = replica('a', { state: 'stopped', sent: { command: 'preload', at: NOW - 1_000 } })
    expect(mayStart(told)).toBe(true)
    expect(startable(told, NOW)).toBe(false)
    expect(mayStart(replica('a', { state: 'stopped', cordoned: true }))).toBe(false)
    expect(mayStart(replica('a'))).toBe(false)
  })
})

describe('placementState', () => {
  const at = { maintenance: false, now: NOW }
  it('hides a cordoned replica and one told to drain from placement', () => {
    expect(placementState(replica('a', { cordoned: true }), at)).toBe('stopped')
    expect(placementState(replica('a', { sent: { command: 'drain', at: NOW - 1 } }), at)).toBe('draining')
    expect(placementState(replica('a'), at)).toBe('ready')
  })

  it('counts every replica as stopped under a maintenance drain, and keeps failed and lost', () => {
    expect(placementState(replica('a', { state: 'draining' }), { maintenance: true, now: NOW })).toBe('stopped')
    expect(placementState(replica('a'), { maintenance: true, now: NOW })).toBe('stopped')
    expect(placementState(replica('a', { state: 'draining' }), at)).toBe('draining')
    expect(placementState(replica('a', { state: 'failed', cordoned: true }), at)).toBe('failed')
    expect(placementState(replica('a', { state: 'lost', cordoned: true }), at)).toBe('lost')
  })
})

describe('rolling reload', () => {
  const r = (nodeId: string, state: RolloutReplica['state'], cordoned = false): RolloutReplica => ({ nodeId, state, cordoned })

  it('reloads a single ready replica in place, and failed ones at once', () => {
    expect(beginReload([r('a', 'ready'), r('b', 'failed'), r('c', 'stopped')], { now: NOW })).toEqual({
      rollout: null,
      commands: [
        { nodeId: 'b', command: 'reload' },
        { nodeId: 'a', command: 'reload' },
      ],
      stopped: null,
    })
  })

  it('drains one node, starts it again, and moves on only once it is ready', () => {
    const begun = beginReload([r('a', 'ready'), r('b', 'ready')], { now: NOW, deadlineMs: 5_000 })
    expect(begun.commands).toEqual([{ nodeId: 'a', command: 'drain' }])
    const first = begun.rollout
    if (!first) throw new Error('expected a rolling reload')
    expect(advanceReload(first, [r('a', 'draining'), r('b', 'ready')], NOW + 1)).toEqual({ rollout: first, commands: [], stopped: null })
    const stopped = advanceReload(first, [r('a', 'stopped'), r('b', 'ready')], NOW + 2)
    expect(stopped.commands).toEqual([{ nodeId: 'a', command: 'preload' }])
    const starting = stopped.rollout
    if (!starting) throw new Error('expected the reload to go on')
    expect(advanceReload(starting, [r('a', 'starting'), r('b', 'ready')], NOW + 3).commands).toEqual([])
    const next = advanceReload(starting, [r('a', 'ready'), r('b', 'ready')], NOW + 4)
    expect(next.commands).toEqual([{ nodeId: 'b', command: 'drain' }])
    expect(next.rollout).toMatchObject({ index: 1, phase: 'stopping', deadlineMs: 5_000 })
    const last = next.rollout
    if (!last) throw new Error('expected the reload to go on')
    const lastStarting = advanceReload(last, [r('a', 'ready'), r('b', 'stopped')], NOW + 5).rollout
    if (!lastStarting) throw new Error('expected the reload to go on')
    expect(advanceReload(lastStarting, [r('a', 'ready'), r('b', 'ready')], NOW + 6)).toEqual({ rollout: null, commands: [], stopped: null })
  })

  it('stops when a new engine fails, so the other replicas keep serving', () => {
    const begun = beginReload([r('a', 'ready'), r('b', 'ready')], { now: NOW })
    const starting = begun.rollout && advanceReload(begun.rollout, [r('a', 'stopped'), r('b', 'ready')], NOW).rollout
    if (!starting) throw new Error('expected the reload to go on')
    expect(advanceReload(starting, [r('a', 'failed'), r('b', 'ready')], NOW)).toMatchObject({
      rollout: null,
      commands: [],
      stopped: expect.stringContaining('node a failed'),
    })
  })

  it('reloads the last ready replica in place when no other one serves, and skips nodes that left', () => {
    const begun = beginReload([r('a', 'ready'), r('b', 'ready'), r('c', 'ready')], { now: NOW })
    const starting = begun.rollout && advanceReload(begun.rollout, [r('a', 'stopped'), r('b', 'ready'), r('c', 'ready')], NOW).rollout
    if (!starting) throw new Error('expected the reload to go on')
    // b went away; a came back ready, c is next.
    expect(advanceReload(starting, [r('a', 'ready'), r('b', 'lost'), r('c', 'ready')], NOW).commands).toEqual([{ nodeId: 'c', command: 'drain' }])
    // a was cordoned meanwhile and b is gone: c is the only one serving.
    expect(advanceReload(starting, [r('a', 'ready', true), r('b', 'lost'), r('c', 'ready')], NOW).commands).toEqual([{ nodeId: 'c', command: 'reload' }])
  })

  it('gives up on a node that does not finish within the step timeout', () => {
    const begun = beginReload([r('a', 'ready'), r('b', 'ready')], { now: NOW })
    if (!begun.rollout) throw new Error('expected a rolling reload')
    expect(advanceReload(begun.rollout, [r('a', 'draining'), r('b', 'ready')], NOW + ROLLING_STEP_TIMEOUT_MS + 1)).toMatchObject({
      rollout: null,
      stopped: expect.stringContaining('node a'),
    })
  })
})
