import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { costCounts } from '../../control-plane/runtime/cost-counts.ts'
import { startTask } from '../../control-plane/task/runner.ts'
import type { RunningTask, TaskRequest } from '../../control-plane/task/runner.ts'
import type { TaskProgress } from '../../control-plane/task/task-progress.ts'
import { LlorchError } from '../../protocol/index.ts'
import type { ControlFrame, Dispatch, ReplicaReport, TaskEvent } from '../../protocol/index.ts'
import { EVENT_CEILING_MS, createNode, hello, open } from './agent-socket.ts'
import type { AgentSocket } from './agent-socket.ts'
import { call, uniqueName } from './support.ts'

/** How often a test polls the pool while it waits for a state the runner should reach. */
const POLL_MS = 20

interface LinkedNode {
  id: string
  agent: AgentSocket
}

function replica(pool: string): ReplicaReport {
  return { pool, engine: 'openai', state: 'ready', slots: 1, slots_busy: 0, breaker_open: false }
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + EVENT_CEILING_MS
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** Agents whose nodes each offer one ready slot of `pool`, seen by the pool before the test starts. */
async function linkedNodes(pool: string, count: number): Promise<LinkedNode[]> {
  const linked: LinkedNode[] = []
  for (let i = 0; i < count; i += 1) {
    const node = await createNode()
    const agent = await open(node.token)
    agent.send(hello({ replicas: [replica(pool)] }))
    expect(await agent.next()).toMatchObject({ type: 'welcome' })
    linked.push({ id: node.id, agent })
  }
  await until(
    'replicas seen by the pool',
    () => env.POOLS.getByName(pool).status(),
    (s) => s.replicas.filter((r) => r.state === 'ready').length === count,
  )
  return linked
}

function run(pool: string, options: Pick<TaskRequest, 'priority' | 'preemptible'> = { priority: undefined }): RunningTask {
  return startTask({
    env,
    taskId: crypto.randomUUID(),
    poolId: pool,
    apiKeyId: null,
    generation: { endpoint: 'chat', body: { model: pool, messages: [{ role: 'user', content: 'hi' }] } },
    waitUntil: () => {},
    ...options,
  })
}

/** A batch line as its BatchObject runs it. */
const BATCH_LINE = { priority: 'batch', preemptible: true } as const

async function nextFrame(agent: AgentSocket, type: ControlFrame['type']): Promise<ControlFrame> {
  for (;;) {
    const frame = await agent.next()
    if (frame.type === type) return frame
  }
}

async function dispatched(agent: AgentSocket): Promise<Dispatch> {
  const frame = await nextFrame(agent, 'dispatch')
  if (frame.type !== 'dispatch') throw new Error('expected a dispatch')
  return frame
}

function sendEvent(agent: AgentSocket, taskId: string, event: TaskEvent): void {
  agent.send({ type: 'task_event', task_id: taskId, event })
}

const TOKEN: TaskEvent = { kind: 'deltas', seq: 0, chunks: [{ choices: [{ index: 0, delta: { content: 'hello' }, finish_reason: null }] }] }
const END: TaskEvent = { kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }

async function collect(task: RunningTask): Promise<{ events: TaskProgress[]; error: LlorchError | null }> {
  const events: TaskProgress[] = []
  try {
    for await (const event of task.events) events.push(event)
    return { events, error: null }
  } catch (error) {
    if (!(error instanceof LlorchError)) throw error
    return { events, error }
  }
}

async function busySlots(pool: string): Promise<number> {
  const status = await env.POOLS.getByName(pool).status()
  return status.replicas.reduce((n, r) => n + r.busy, 0)
}

/** Attempts released by how they ended (the pool counts one per release), leaving out the zeros. */
async function endedAttempts(pool: string): Promise<Record<string, number>> {
  const metrics = await env.POOLS.getByName(pool).metrics()
  return Object.fromEntries(Object.entries(metrics.tasks_ended).filter(([, n]) => n !== undefined && n > 0))
}

describe('the task runner (startTask)', () => {
  it('has a task granted at once dispatched by its PoolObject: two legs before the agent has it, and every event reaches the reader', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const before = costCounts().critical_path
    const task = run(pool)
    const result = collect(task)
    const dispatch = await dispatched(node.agent)
    expect(dispatch.task_id).toBe(task.taskId)
    sendEvent(node.agent, task.taskId, { kind: 'started' })
    sendEvent(node.agent, task.taskId, TOKEN)
    sendEvent(node.agent, task.taskId, END)
    const { events, error } = await result
    expect(error).toBeNull()
    expect(events.filter((e) => e.kind !== 'granted')).toEqual([{ kind: 'started' }, TOKEN, END])
    const after = costCounts().critical_path
    expect([after.dispatches - before.dispatches, after.legs_before_dispatch - before.legs_before_dispatch]).toEqual([1, 2])
    await until(
      'the slot given back',
      () => busySlots(pool),
      (busy) => busy === 0,
    )
  })

  it('places a task again on another node when its engine fails before the first token, and the client sees only the second attempt', async () => {
    const pool = uniqueName('model')
    const nodes = await linkedNodes(pool, 2)
    const task = run(pool)
    const result = collect(task)
    const dispatches = nodes.map(async (node) => ({ node, dispatch: await dispatched(node.agent) }))
    const first = await Promise.race(dispatches)
    sendEvent(first.node.agent, task.taskId, { kind: 'error', code: 'engine_unavailable', message: 'engine crashed', retriable: true })
    const second = await dispatches[nodes[0] === first.node ? 1 : 0]
    if (!second) throw new Error('expected two nodes')
    const other = second.node
    expect(second.dispatch.task_id).toBe(task.taskId)
    sendEvent(other.agent, task.taskId, { kind: 'started' })
    sendEvent(other.agent, task.taskId, TOKEN)
    sendEvent(other.agent, task.taskId, END)
    const { events, error } = await result
    expect(error).toBeNull()
    expect(events.filter((e) => e.kind === 'granted').map((e) => (e.kind === 'granted' ? [e.nodeId, e.attempt] : null))).toEqual([
      [first.node.id, 1],
      [other.id, 2],
    ])
    expect(events.some((e) => e.kind === 'error')).toBe(false)
    expect(events.at(-1)).toMatchObject({ kind: 'end', finish_reason: 'stop' })
    // One release per attempt: the failed one was taken back by the retry, the second completed.
    await until(
      'the slot given back',
      () => busySlots(pool),
      (n) => n === 0,
    )
    expect(
      await until(
        'one ended attempt',
        () => endedAttempts(pool),
        (ended) => Object.keys(ended).length > 0,
      ),
    ).toEqual({ completed: 1 })
  })

  it('ends a task whose only engine sends no first token with deadline_exceeded, cancels it on the node and frees the slot', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    expect((await call('PATCH', `/v2/pools/${pool}`, { body: { first_token_timeout_ms: 100 } })).status).toBe(200)
    const task = run(pool)
    const result = collect(task)
    await dispatched(node.agent)
    expect(await nextFrame(node.agent, 'cancel')).toMatchObject({ type: 'cancel', task_id: task.taskId })
    const { events } = await result
    expect(events.at(-1)).toMatchObject({ kind: 'error', code: 'deadline_exceeded' })
    await until(
      'the slot given back',
      () => busySlots(pool),
      (n) => n === 0,
    )
    expect(await endedAttempts(pool)).toEqual({ failed: 1 })
  })

  it('takes a queued task out of the queue when it is cancelled: its engine never sees it', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const running = run(pool)
    const runningResult = collect(running)
    await dispatched(node.agent)
    const queued = run(pool)
    const queuedResult = collect(queued)
    await until(
      'the second task queued',
      () => env.POOLS.getByName(pool).status(),
      (s) => s.queueDepth === 1,
    )
    await queued.cancel()
    expect((await queuedResult).error?.code).toBe('cancelled')
    expect((await env.POOLS.getByName(pool).status()).queueDepth).toBe(0)
    sendEvent(node.agent, running.taskId, { kind: 'started' })
    sendEvent(node.agent, running.taskId, END)
    expect((await runningResult).events.at(-1)).toMatchObject({ kind: 'end' })
    // The next frame the agent gets is for a new task, never the cancelled one's dispatch.
    const after = run(pool)
    const afterResult = collect(after)
    expect((await dispatched(node.agent)).task_id).toBe(after.taskId)
    sendEvent(node.agent, after.taskId, END)
    await afterResult
  })

  it('stops a running task on its node when it is cancelled, and its slot is free once cancel answers', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const task = run(pool)
    const iterator = task.events[Symbol.asyncIterator]()
    expect((await iterator.next()).value).toMatchObject({ kind: 'granted', nodeId: node.id })
    // The dispatch goes out once the reader asks for what follows the grant.
    const following = iterator.next()
    const dispatch = await dispatched(node.agent)
    sendEvent(node.agent, dispatch.task_id, { kind: 'started' })
    sendEvent(node.agent, dispatch.task_id, TOKEN)
    for (let next = await following; !next.done; next = await iterator.next()) if (next.value.kind === 'deltas') break
    await task.cancel()
    expect(await busySlots(pool)).toBe(0)
    expect(await nextFrame(node.agent, 'cancel')).toMatchObject({ type: 'cancel', task_id: task.taskId })
    const rest: TaskProgress[] = []
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value)
    expect(rest).toEqual([{ kind: 'error', code: 'cancelled', message: 'cancelled by the client', retriable: false }])
    expect(await endedAttempts(pool)).toEqual({ cancelled: 1 })
  })

  it("gives a batch line's slot to an interactive task that finds none free: the line ends preempted, stopped on its node before the new dispatch", async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const line = run(pool, BATCH_LINE)
    const lineResult = collect(line)
    expect((await dispatched(node.agent)).task_id).toBe(line.taskId)
    sendEvent(node.agent, line.taskId, { kind: 'started' })
    sendEvent(node.agent, line.taskId, TOKEN)

    const interactive = run(pool)
    const interactiveResult = collect(interactive)
    expect(await nextFrame(node.agent, 'cancel')).toMatchObject({ task_id: line.taskId, reason: 'preempted by an interactive task' })
    expect((await dispatched(node.agent)).task_id).toBe(interactive.taskId)
    const { events, error } = await lineResult
    expect(error).toBeNull()
    expect(events.at(-1)).toEqual({ kind: 'error', code: 'preempted', message: 'the slot was given to an interactive task', retriable: true })
    // The agent's late end of the stopped line changes nothing: the slot is the interactive task's.
    sendEvent(node.agent, line.taskId, END)
    expect(await busySlots(pool)).toBe(1)
    sendEvent(node.agent, interactive.taskId, END)
    expect((await interactiveResult).events.at(-1)).toEqual(END)
    await until(
      'the slot given back',
      () => busySlots(pool),
      (busy) => busy === 0,
    )
    expect((await env.POOLS.getByName(pool).metrics()).tasks_preempted).toBe(1)
  })

  it('preempts for an interactive task that queued behind a waiting batch line, and the line waiting keeps its place after it', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const running = run(pool, BATCH_LINE)
    const runningResult = collect(running)
    expect((await dispatched(node.agent)).task_id).toBe(running.taskId)
    const waiting = run(pool, BATCH_LINE)
    const waitingResult = collect(waiting)
    await until(
      'the second line queued',
      async () => (await env.POOLS.getByName(pool).status()).queueDepth,
      (depth) => depth === 1,
    )
    const interactive = run(pool)
    const interactiveResult = collect(interactive)
    expect(await nextFrame(node.agent, 'cancel')).toMatchObject({ task_id: running.taskId })
    expect((await dispatched(node.agent)).task_id).toBe(interactive.taskId)
    expect((await runningResult).events.at(-1)).toMatchObject({ kind: 'error', code: 'preempted', retriable: true })
    sendEvent(node.agent, interactive.taskId, END)
    expect((await interactiveResult).events.at(-1)).toEqual(END)
    expect((await dispatched(node.agent)).task_id).toBe(waiting.taskId)
    sendEvent(node.agent, waiting.taskId, END)
    expect((await waitingResult).events.at(-1)).toEqual(END)
  })

  it('lets an interactive task wait for a batch-priority request of a client, which is never preempted', async () => {
    const pool = uniqueName('model')
    const [node] = await linkedNodes(pool, 1)
    if (!node) throw new Error('expected a node')
    const batch = run(pool, { priority: 'batch' })
    const batchResult = collect(batch)
    expect((await dispatched(node.agent)).task_id).toBe(batch.taskId)
    const interactive = run(pool)
    const interactiveResult = collect(interactive)
    await until(
      'the interactive task queued',
      async () => (await env.POOLS.getByName(pool).status()).queueDepth,
      (depth) => depth === 1,
    )
    sendEvent(node.agent, batch.taskId, END)
    expect((await batchResult).events.at(-1)).toEqual(END)
    expect((await dispatched(node.agent)).task_id).toBe(interactive.taskId)
    sendEvent(node.agent, interactive.taskId, END)
    expect((await interactiveResult).events.at(-1)).toEqual(END)
    expect((await env.POOLS.getByName(pool).metrics()).tasks_preempted).toBe(0)
  })
})
