import { execa } from 'execa'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { NodeView } from '../../protocol/index.ts'
import { LocalState } from '../../scripts/local/local-state.ts'
import { expectedText } from '../support/openai-stack.ts'
import { FAKE_ENGINE, REPO_ROOT, enginePidsIn, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const START_CEILING_MS = 90_000
/** From the last stream's end to npm start's last line, every process stopped. */
const STOP_CEILING_MS = 30_000
const ControlPlaneEvent = z.looseObject({ time: z.iso.datetime(), level: z.enum(['info', 'error']), event: z.string() })

/**
 * `npm start` (scripts/start.ts) on a state dir, its stdout and stderr collected. `terminal`: as a
 * terminal runs it, `npm start` in a process group of its own, all of which a Ctrl-C signals.
 */
function npmStart(cleanup: ReturnType<typeof useProcessCleanup>, stateDir: string, env: Record<string, string> = {}, { terminal = false } = {}) {
  const [file, args] = terminal ? ['npm', ['start']] : [process.execPath, [path.join(REPO_ROOT, 'scripts/start.ts')]]
  const start = execa(file, args, {
    cwd: REPO_ROOT,
    env: { LLORCH_STATE_DIR: stateDir, LLORCH_PORT: '0', LLORCH_LIBSQL_PORT: '0', ...env },
    detached: terminal,
    reject: false,
    all: true,
  })
  cleanup.track(start.pid)
  let output = ''
  start.all.setEncoding('utf8')
  start.all.on('data', (chunk: string) => (output += chunk))
  return {
    process: start,
    output: () => output,
    /** Waits for the start banner; answers the pids it names (the agent, the control plane's process). */
    async banner(): Promise<{ agentPid: number; controlPlanePid: number }> {
      await waitFor(() => output.includes('Ctrl-C stops everything'), {
        timeoutMs: START_CEILING_MS,
        intervalMs: 100,
        message: `the start banner; output so far:\n${output}`,
      })
      const pids = {
        agentPid: Number(/local agent started \(pid (\d+)/.exec(output)?.[1]),
        controlPlanePid: Number(/workerd under pid (\d+)/.exec(output)?.[1]),
      }
      cleanup.track(pids.agentPid)
      cleanup.track(pids.controlPlanePid)
      return pids
    },
    async stop(): Promise<void> {
      const agentPid = Number(/local agent started \(pid (\d+)/.exec(output)?.[1])
      const engines = enginePidsIn(path.join(stateDir, 'agent'))
      start.kill('SIGINT')
      await start
      await waitFor(() => !isAlive(agentPid) && engines.every((pid) => !isAlive(pid)), { timeoutMs: 30_000, message: 'the agent and its engines gone' })
    },
  }
}

describe('npm start', () => {
  const cleanup = useProcessCleanup()

  it('runs the registry, the control plane in workerd and a local agent, streams from the demo pool, and stops on SIGINT', async () => {
    const stateDir = cleanup.stateDir()
    // The API on every interface; the registry must stay on loopback and ask for its token.
    const start = npmStart(cleanup, stateDir, { LLORCH_HOST: '0.0.0.0' })
    await start.banner()
    expect(start.output()).toContain('pool "demo-model" is ready')

    const state = LocalState.parse(JSON.parse(readFileSync(path.join(stateDir, 'local.json'), 'utf8')))
    expect(state.apiKey).toBeDefined()
    expect(existsSync(path.join(stateDir, 'registry.db'))).toBe(true)
    expect(new URL(state.libsqlUrl).hostname).toBe('127.0.0.1')
    const anonymous = await fetch(`${state.libsqlUrl}/v2/pipeline`, {
      method: 'POST',
      body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql: 'SELECT id, name FROM api_keys' } }] }),
    })
    expect(anonymous.status).toBe(401)

    const health = await fetch(`${state.url}/health`)
    expect(await health.json()).toEqual({ status: 'ok', version: expect.any(String) })
    const node = NodeView.parse(
      await (await fetch(`${state.url}/v2/nodes/${state.nodeId}`, { headers: { Authorization: `Bearer ${state.adminToken}` } })).json(),
    )
    expect(node.status).toBe('online')

    const openai = new OpenAI({ baseURL: `${state.url}/v1`, apiKey: state.apiKey ?? '', maxRetries: 0 })
    let text = ''
    for await (const chunk of await openai.chat.completions.create({
      model: 'demo-model',
      stream: true,
      max_tokens: 4,
      messages: [{ role: 'user', content: 'Hello' }],
    })) {
      text += chunk.choices[0]?.delta.content ?? ''
    }
    expect(text).toBe('tok0 tok1 tok2 tok3')

    expect(enginePidsIn(path.join(stateDir, 'agent')).length).toBe(1)
    await start.stop()
    expect(start.output()).toContain('llorch: SIGINT: stopping')
    const agentLog = readFileSync(path.join(stateDir, 'agent.log'), 'utf8')
    expect(agentLog).toContain('"event":"agent.stopped"')
    // The banner stays readable: the Worker's events go to a file, one JSON object per line.
    expect(start.output()).toContain('control-plane.log')
    expect(start.output()).not.toContain('"event":"node.online"')
    const events = readFileSync(path.join(stateDir, 'control-plane.log'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => ControlPlaneEvent.parse(JSON.parse(line)))
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['node.connected', 'node.online', 'task.granted', 'task.released']))
    expect(events.find((e) => e.event === 'task.released')).toMatchObject({
      request_id: expect.any(String),
      pool: 'demo-model',
      node: state.nodeId,
      outcome: 'completed',
    })
  })
})

describe('npm start, the second time', () => {
  const cleanup = useProcessCleanup()

  it('keeps a user-edited agent.json, updating only its connection, and names the variable for a port in use', async () => {
    const stateDir = cleanup.stateDir()
    const first = npmStart(cleanup, stateDir)
    await first.banner()
    expect(first.output()).toContain('agent.json with the demo pool "demo-model"; edit it freely, npm start keeps it')
    await first.stop()

    // What the banner tells a user to do: add a pool to the agent config, then start again.
    const file = path.join(stateDir, 'agent.json')
    const written = z
      .looseObject({ control_plane_url: z.string(), node_token_file: z.string(), state_dir: z.string(), pools: z.array(z.record(z.string(), z.unknown())) })
      .parse(JSON.parse(readFileSync(file, 'utf8')))
    expect(written.node_token_file).toBe('node-token')
    expect(written.state_dir).toBe(path.join(stateDir, 'agent'))
    const edited = {
      ...written,
      log_level: 'debug',
      pools: [...written.pools, { id: 'my-model', engine: 'command', command: ['{node}', FAKE_ENGINE, '--port', '{port}'] }],
    }
    writeFileSync(file, `${JSON.stringify(edited, null, 2)}\n`)

    const second = npmStart(cleanup, stateDir)
    await second.banner()
    expect(second.output()).toContain('(demo-model, my-model)')
    // No source changed since the first start: its bundle is served again, not rebuilt.
    expect(second.output()).toContain('llorch: the Worker bundle is up to date with the sources (dist/index.js)')
    expect(second.output()).toContain('llorch: pool "my-model" is ready')
    const state = LocalState.parse(JSON.parse(readFileSync(path.join(stateDir, 'local.json'), 'utf8')))
    const kept = JSON.parse(readFileSync(file, 'utf8'))
    // Ports are picked afresh (0), so the URL is the one field npm start had to change.
    expect(kept).toEqual({ ...edited, control_plane_url: state.url })

    const libsqlPort = new URL(state.libsqlUrl).port
    const taken = npmStart(cleanup, cleanup.stateDir(), { LLORCH_LIBSQL_PORT: libsqlPort })
    expect((await taken.process).exitCode).toBe(1)
    expect(taken.output()).toContain(
      `npm start: 127.0.0.1:${libsqlPort} is already in use (another npm start, or wrangler dev?). Set LLORCH_LIBSQL_PORT to a free port`,
    )
    expect(taken.output()).not.toMatch(/^\s+at /m)
    const port = new URL(state.url).port
    const takenApi = npmStart(cleanup, cleanup.stateDir(), { LLORCH_PORT: port })
    expect((await takenApi.process).exitCode).toBe(1)
    expect(takenApi.output()).toContain(`npm start: 127.0.0.1:${port} is already in use (another npm start, or wrangler dev?). Set LLORCH_PORT to a free port`)
    expect(takenApi.output()).not.toMatch(/^\s+at /m)
    await second.stop()
  })
})

describe('npm start with a broken pool in agent.json', () => {
  const cleanup = useProcessCleanup()

  it("refuses a pool whose engine program does not exist before starting the agent, and names a failed replica's reason at once", async () => {
    const stateDir = cleanup.stateDir()
    const file = path.join(stateDir, 'agent.json')
    // The README's example pool, with paths that do not exist on this machine.
    writeFileSync(
      file,
      JSON.stringify({ pools: [{ id: 'my-model', engine: 'llamacpp', binary: '/nonexistent/llama-server', model: '/nonexistent/model.gguf' }] }),
    )
    const refused = npmStart(cleanup, stateDir)
    expect((await refused.process).exitCode).toBe(1)
    expect(refused.output()).toContain(`npm start: ${file}: pools[0].binary: `)
    expect(refused.output()).toContain(`npm start: ${file}: pools[0].model: /nonexistent/model.gguf does not exist`)
    expect(refused.output()).toMatch(/npm start: 2 problems in \S*agent\.json; the agent was not started/)
    expect(refused.output()).not.toContain('local agent started')
    expect(existsSync(path.join(stateDir, 'agent.log'))).toBe(false)

    // A program that exists but fails at start: the banner says why, without waiting out the minute.
    const failing = {
      id: 'broken-model',
      engine: 'command',
      command: ['{node}', FAKE_ENGINE, '--port', '{port}', '--fail-start', '--exit-code', '3'],
      restart: { initial_delay_ms: 1, max_crashes: 1 },
    }
    writeFileSync(file, JSON.stringify({ pools: [failing] }))
    const start = npmStart(cleanup, stateDir)
    await start.banner()
    expect(start.output()).toMatch(
      /llorch: pool "broken-model" failed on node \S+: .+\n {2}\(npx llorch pools show broken-model and \S*agent\.log have the rest/,
    )
    expect(start.output()).not.toContain('is not ready yet')
    await start.stop()
  })
})

/** One streamed chat as a client reads it: the SSE text as it arrives, and how the connection ended. */
function streamChat(state: LocalState, maxTokens: number) {
  let text = ''
  const ended = (async (): Promise<string | null> => {
    const response = await fetch(`${state.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${state.apiKey ?? ''}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'slow-model', stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'Hello' }] }),
    })
    if (!response.body) return `no body (${response.status})`
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body) text += decoder.decode(chunk, { stream: true })
    } catch (error) {
      return error instanceof Error ? `${error.message} (${String(error.cause)})` : String(error)
    }
    return null
  })()
  const events = () =>
    text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice('data: '.length))
  const Chunk = z.looseObject({ choices: z.array(z.looseObject({ delta: z.looseObject({ content: z.string().nullish() }) })) })
  const ErrorChunk = z.looseObject({ error: z.looseObject({ message: z.string(), code: z.string().nullish() }) })
  const parsed = () =>
    events()
      .filter((e) => e !== '[DONE]')
      .map((e): unknown => JSON.parse(e))
  return {
    ended,
    events,
    content: () =>
      parsed()
        .flatMap((e) => Chunk.safeParse(e).data?.choices.map((c) => c.delta.content ?? '') ?? [])
        .join(''),
    errors: () => parsed().flatMap((e) => ErrorChunk.safeParse(e).data?.error ?? []),
  }
}

describe('npm start, stopped with Ctrl-C mid-stream', () => {
  const cleanup = useProcessCleanup()
  /** The agent's drain deadline: the short stream ends within it, the long one does not. */
  const DRAIN_MS = 4_000

  it('drains the agent first: a stream gets every token and [DONE], one past the drain deadline an error chunk saying the server is stopping; then everything exits', async () => {
    const stateDir = cleanup.stateDir()
    // A pool as slow as a real model: 10 tokens a second.
    const pool = {
      id: 'slow-model',
      engine: 'command',
      command: ['{node}', FAKE_ENGINE, '--port', '{port}', '--slots', '{slots}', '--model-name', '{pool}'],
      args: ['--tokens', '200', '--tokens-per-second', '10'],
      slots: 2,
    }
    writeFileSync(path.join(stateDir, 'agent.json'), JSON.stringify({ state_dir: path.join(stateDir, 'agent'), shutdown_drain_ms: DRAIN_MS, pools: [pool] }))
    const start = npmStart(cleanup, stateDir, {}, { terminal: true })
    const { agentPid, controlPlanePid } = await start.banner()
    const engines = enginePidsIn(path.join(stateDir, 'agent'))
    const state = LocalState.parse(JSON.parse(readFileSync(path.join(stateDir, 'local.json'), 'utf8')))

    const short = streamChat(state, 20)
    const long = streamChat(state, 200)
    await waitFor(() => short.content().split(' ').length >= 3 && long.content().split(' ').length >= 3, {
      timeoutMs: START_CEILING_MS,
      message: 'both streams flowing',
    })
    process.kill(-(start.process.pid ?? 0), 'SIGINT')

    expect(await short.ended).toBeNull()
    expect(short.content()).toBe(expectedText(20))
    expect(short.events().at(-1)).toBe('[DONE]')
    expect(await long.ended).toBeNull()
    expect(long.content()).toMatch(/^tok0( tok\d+)+$/)
    expect(long.content().length).toBeLessThan(expectedText(200).length)
    expect(long.errors()).toEqual([
      expect.objectContaining({
        code: 'engine_unavailable',
        message: `the server is stopping: pool "slow-model" shut down before the task finished (drain deadline ${DRAIN_MS} ms)`,
      }),
    ])

    await start.process
    await waitFor(() => start.output().includes('llorch: stopped'), {
      timeoutMs: STOP_CEILING_MS,
      message: `npm start's last line; output so far:\n${start.output()}`,
    })
    await waitFor(() => ![agentPid, controlPlanePid, ...engines].some(isAlive), {
      timeoutMs: STOP_CEILING_MS,
      message: 'the agent, the control plane and the engines gone',
    })
    expect(start.output()).toContain(`llorch: SIGINT: stopping: the agent drains first (running streams have up to ${DRAIN_MS} ms to finish`)
    expect(start.output()).not.toContain('again: stopping now')
    await expect(fetch(`${state.url}/health`)).rejects.toThrow()
    await expect(fetch(state.libsqlUrl)).rejects.toThrow()
  })
})
