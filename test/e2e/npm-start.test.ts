import { execa } from 'execa'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { NodeView } from '../../protocol/index.ts'
import { LocalState } from '../../scripts/local/local-state.ts'
import { FAKE_ENGINE, REPO_ROOT, enginePidsIn, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const START_CEILING_MS = 90_000
const ControlPlaneEvent = z.looseObject({ time: z.iso.datetime(), level: z.enum(['info', 'error']), event: z.string() })

/** `npm start` (scripts/start.ts) on a state dir, its stdout and stderr collected. */
function npmStart(cleanup: ReturnType<typeof useProcessCleanup>, stateDir: string, env: Record<string, string> = {}) {
  const start = execa(process.execPath, [path.join(REPO_ROOT, 'scripts/start.ts')], {
    cwd: REPO_ROOT,
    env: { LLORCH_STATE_DIR: stateDir, LLORCH_PORT: '0', LLORCH_LIBSQL_PORT: '0', ...env },
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
    async banner(): Promise<void> {
      await waitFor(() => output.includes('Ctrl-C stops everything'), {
        timeoutMs: START_CEILING_MS,
        intervalMs: 100,
        message: `the start banner; output so far:\n${output}`,
      })
      cleanup.track(Number(/local agent started \(pid (\d+)/.exec(output)?.[1]))
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
