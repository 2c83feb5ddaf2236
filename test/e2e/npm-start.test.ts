import { execa } from 'execa'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { NodeView } from '../../protocol/index.ts'
import { LocalState } from '../../scripts/local/local-state.ts'
import { REPO_ROOT, enginePidsIn, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

const START_CEILING_MS = 90_000
const ControlPlaneEvent = z.looseObject({ time: z.iso.datetime(), level: z.enum(['info', 'error']), event: z.string() })

describe('npm start', () => {
  const cleanup = useProcessCleanup()

  it('runs the registry, the control plane in workerd and a local agent, streams from the demo pool, and stops on SIGINT', async () => {
    const stateDir = cleanup.stateDir()
    const start = execa(process.execPath, [path.join(REPO_ROOT, 'scripts/start.ts')], {
      cwd: REPO_ROOT,
      env: { LLORCH_STATE_DIR: stateDir, LLORCH_PORT: '0', LLORCH_LIBSQL_PORT: '0' },
      reject: false,
      all: true,
    })
    cleanup.track(start.pid)
    let output = ''
    start.all.setEncoding('utf8')
    start.all.on('data', (chunk: string) => (output += chunk))

    await waitFor(() => output.includes('Ctrl-C stops everything'), { timeoutMs: START_CEILING_MS, intervalMs: 100, message: `the start banner; output so far:\n${output}` })
    const agentPid = Number(/local agent started \(pid (\d+)/.exec(output)?.[1])
    cleanup.track(agentPid)
    expect(output).toContain('pool "demo-model" is ready')

    const state = LocalState.parse(JSON.parse(readFileSync(path.join(stateDir, 'local.json'), 'utf8')))
    expect(state.apiKey).toBeDefined()
    expect(existsSync(path.join(stateDir, 'registry.db'))).toBe(true)

    const health = await fetch(`${state.url}/health`)
    expect(await health.json()).toEqual({ status: 'ok', version: expect.any(String) })
    const node = NodeView.parse(await (await fetch(`${state.url}/v2/nodes/${state.nodeId}`, { headers: { Authorization: `Bearer ${state.adminToken}` } })).json())
    expect(node.status).toBe('online')

    const openai = new OpenAI({ baseURL: `${state.url}/v1`, apiKey: state.apiKey ?? '', maxRetries: 0 })
    let text = ''
    for await (const chunk of await openai.chat.completions.create({ model: 'demo-model', stream: true, max_tokens: 4, messages: [{ role: 'user', content: 'Hello' }] })) {
      text += chunk.choices[0]?.delta.content ?? ''
    }
    expect(text).toBe('tok0 tok1 tok2 tok3')

    const engines = enginePidsIn(path.join(stateDir, 'agent'))
    expect(engines.length).toBe(1)
    start.kill('SIGINT')
    await start
    expect(output).toContain('llorch: SIGINT: stopping')
    await waitFor(() => !isAlive(agentPid) && engines.every((pid) => !isAlive(pid)), { timeoutMs: 30_000, message: 'the agent and its engine gone' })
    const agentLog = readFileSync(path.join(stateDir, 'agent.log'), 'utf8')
    expect(agentLog).toContain('"event":"agent.stopped"')
    // The banner stays readable: the Worker's events go to a file, one JSON object per line.
    expect(output).toContain('control-plane.log')
    expect(output).not.toContain('"event":"node.online"')
    const events = readFileSync(path.join(stateDir, 'control-plane.log'), 'utf8').trimEnd().split('\n').map((line) => ControlPlaneEvent.parse(JSON.parse(line)))
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['node.connected', 'node.online', 'task.granted', 'task.released']))
    expect(events.find((e) => e.event === 'task.released')).toMatchObject({ request_id: expect.any(String), pool: 'demo-model', node: state.nodeId, outcome: 'completed' })
  })
})
