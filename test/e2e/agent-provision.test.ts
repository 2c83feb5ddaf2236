import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterEach, describe, expect, it } from 'vitest'
import { CreateTaskResponse, NodeList } from '../../protocol/index.ts'
import type { ReplicaView } from '../../protocol/index.ts'
import { modelBytes, sha256Of, startHubServer } from '../fixtures/hub-server.ts'
import type { HubServer } from '../fixtures/hub-server.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import type { LinkedAgent } from '../support/linked-agent.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import { parsePrometheus, sampleValue } from '../support/prometheus.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, expectedText, freePort, openaiClient } from '../support/openai-stack.ts'
import { AGENT_CLI, fakeEngineStats, useProcessCleanup, waitFor } from '../support/processes.ts'
import { createTask, openEvents, tokenText } from '../support/task-events.ts'

const cleanup = useProcessCleanup()
const stack = useStack({ heartbeatIntervalMs: 200 })
const COMMIT = '1'.repeat(40)
const NEXT_COMMIT = '2'.repeat(40)
/** Big enough that a throttled transfer takes seconds, small enough for a test. */
const MODEL = modelBytes(1_500_000, 11)
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

async function hub(): Promise<HubServer> {
  const server = await startHubServer({ repos: { 'org/tiny': { commit: COMMIT, refs: { main: COMMIT }, files: { 'tiny.gguf': MODEL } } } })
  closers.push(() => server.close())
  return server
}

function sharedCacheDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-models-'))
  closers.push(async () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const contentGets = (server: HubServer) => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/content/'))

/** A fake-engine pool whose model is the Hub file, read by the engine at start. */
async function hubPool(id: string, overrides: Record<string, unknown> = {}): Promise<{ input: Record<string, unknown>; engineUrl: string }> {
  const port = await freePort()
  const input = fakePoolInput(id, ['--model-file', '{model}', '--tokens', '3'], { port, model: { hf: 'org/tiny', file: 'tiny.gguf' }, ...overrides })
  return { input, engineUrl: `http://127.0.0.1:${port}` }
}

function linked(s: Stack, server: HubServer, name: string, pools: Record<string, unknown>[], config: Record<string, unknown> = {}): Promise<LinkedAgent> {
  return startLinkedAgent(cleanup, s, { name, pools, config, env: { HF_ENDPOINT: server.url } })
}

async function replicaOn(s: Stack, pool: string, nodeId: string): Promise<ReplicaView | undefined> {
  return (await getPool(s, pool))?.replicas.find((r) => r.node_id === nodeId)
}

/** The `replica.state` moves the agent logged for a pool, as `from>to`. */
function movesOf(agent: LinkedAgent, pool: string): string[] {
  return agent
    .output()
    .split('\n')
    .filter((line) => line.includes('"event":"replica.state"') && line.includes(`"pool":"${pool}"`))
    .map((line) => {
      const { from, to } = JSON.parse(line) as { from: string; to: string }
      return `${from}>${to}`
    })
}

describe('models fetched by the agent', () => {
  it('goes downloading → starting → ready with the progress in GET /v2/pools and /v2/nodes, then serves the fetched file', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.bytesPerSecond = 150_000
    const { input, engineUrl } = await hubPool('tiny')
    const agent = await linked(s, server, 'node-fetch', [input])

    const downloading = await waitFor(
      async () => {
        const replica = await replicaOn(s, 'tiny', agent.nodeId)
        return replica?.state === 'downloading' && (replica.download?.bytes_done ?? 0) > 0 ? replica : null
      },
      { timeoutMs: CEILING_MS, message: 'tiny downloading with progress' },
    )
    expect(downloading.download).toMatchObject({ file: 'tiny.gguf', bytes_total: MODEL.length })
    expect(downloading.download?.bytes_per_s).toBeGreaterThan(0)
    const scraped = parsePrometheus(await (await fetch(new URL('/metrics', s.url), { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text())
    expect(sampleValue(scraped, 'llorch_node_download_total_bytes', { node: agent.nodeId, pool: 'tiny' })).toBe(MODEL.length)
    expect(sampleValue(scraped, 'llorch_node_download_bytes', { node: agent.nodeId, pool: 'tiny' })).toBeGreaterThan(0)
    const status = await waitFor(
      async () => {
        const shown = await execa(process.execPath, [AGENT_CLI, 'status', '--state-dir', agent.stateDir], { reject: false })
        return /tiny +command +downloading +0\/1 +- +tiny\.gguf \d+% /.test(shown.stdout) ? shown.stdout : null
      },
      { timeoutMs: CEILING_MS, message: 'llorch-agent status showing the download' },
    )
    expect(status).toMatch(/tiny\.gguf \d+% [\d.]+ [kM]?B \/ 1\.5 MB at [\d.]+ [kM]?B\/s/)
    const { nodes } = NodeList.parse(await (await s.admin('GET', '/v2/nodes')).json())
    const listed = nodes.find((n) => n.id === agent.nodeId)?.replicas[0]
    expect(listed?.state === 'downloading' ? listed.download?.file : 'done downloading already').toBe('tiny.gguf')

    await waitFor(async () => (await replicaOn(s, 'tiny', agent.nodeId))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'tiny ready' })
    expect(movesOf(agent, 'tiny')).toEqual(['stopped>downloading', 'downloading>starting', 'starting>ready'])
    const after = await (await fetch(new URL('/metrics', s.url), { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
    expect(after).not.toContain('llorch_node_download_bytes{')
    expect((await replicaOn(s, 'tiny', agent.nodeId))?.download).toBeNull()
    expect((await fakeEngineStats(engineUrl)).model_sha256).toBe(sha256Of(MODEL))
    const openai = openaiClient(s, (await createKey(s)).key)
    const answer = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] })
    expect(answer.choices[0]?.message.content).toBe(expectedText(3))
  })

  it('resumes with Range from where a killed agent stopped', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.bytesPerSecond = 300_000
    const cacheDir = sharedCacheDir()
    const { input, engineUrl } = await hubPool('tiny')
    const first = await linked(s, server, 'node-killed', [input], { model_cache_dir: cacheDir })
    await waitFor(async () => ((await replicaOn(s, 'tiny', first.nodeId))?.download?.bytes_done ?? 0) > 300_000, {
      timeoutMs: CEILING_MS,
      message: 'a third of the model fetched',
    })
    process.kill(-first.pid, 'SIGKILL')
    await first.process
    const cutAt = server.bytesSent()
    server.knobs.bytesPerSecond = 0

    const second = await linked(s, server, 'node-resumed', [input], { model_cache_dir: cacheDir })
    await waitFor(async () => (await replicaOn(s, 'tiny', second.nodeId))?.state === 'ready', {
      timeoutMs: CEILING_MS,
      message: 'tiny ready after the restart',
    })
    const ranges = contentGets(server).map((r) => r.range)
    expect(ranges[0]).toBeNull()
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1])
    expect(resumedFrom).toBeGreaterThan(300_000)
    expect(resumedFrom).toBeLessThanOrEqual(cutAt)
    expect((await fakeEngineStats(engineUrl)).model_sha256).toBe(sha256Of(MODEL))
  })

  it('refuses wrong bytes with both hashes and never starts the engine on them', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.wrongBytes = true
    const { input } = await hubPool('tiny', { restart: { max_crashes: 1 } })
    const agent = await linked(s, server, 'node-wrong', [input])
    const failed = await waitFor(
      async () => {
        const replica = await replicaOn(s, 'tiny', agent.nodeId)
        return replica?.state === 'failed' ? replica : null
      },
      { timeoutMs: CEILING_MS, message: 'tiny failed' },
    )
    const wrong = sha256Of(Buffer.concat([Buffer.from([(MODEL[0] ?? 0) ^ 0xff]), MODEL.subarray(1)]))
    expect(failed.reason).toContain(`tiny.gguf: sha256 mismatch, expected ${sha256Of(MODEL)}, got ${wrong}; the file was deleted`)
    expect(movesOf(agent, 'tiny')).toEqual(['stopped>downloading', 'downloading>failed'])
    expect(agent.output()).not.toContain('"event":"replica.spawn"')
  })

  it('refuses a model that does not fit on the disk, naming the numbers', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.claimedSize = 5_000_000_000_000_000
    const { input } = await hubPool('tiny', { restart: { max_crashes: 1 } })
    const agent = await linked(s, server, 'node-full', [input])
    const failed = await waitFor(
      async () => {
        const replica = await replicaOn(s, 'tiny', agent.nodeId)
        return replica?.state === 'failed' ? replica : null
      },
      { timeoutMs: CEILING_MS, message: 'tiny failed' },
    )
    expect(failed.reason).toMatch(new RegExp(`^needs 5000\\.0 TB in ${agent.stateDir}/models, [\\d.]+ [kMGT]?B free;`))
    expect(contentGets(server)).toEqual([])
  })

  it('fetches from a gated repository with hf_token_file, never logging the token, and says what is missing without it', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.token = 'hf_gated_secret_0123456789'
    const { input } = await hubPool('gated', { restart: { max_crashes: 1 } })
    const without = await linked(s, server, 'node-no-token', [input])
    const refused = await waitFor(
      async () => {
        const replica = await replicaOn(s, 'gated', without.nodeId)
        return replica?.state === 'failed' ? replica : null
      },
      { timeoutMs: CEILING_MS, message: 'gated failed without a token' },
    )
    expect(refused.reason).toContain('HTTP 401 from http://127.0.0.1:')
    expect(refused.reason).toContain('needs hf_token_file with a token that may read it')

    const tokenFile = path.join(sharedCacheDir(), 'hf-token')
    writeFileSync(tokenFile, 'hf_gated_secret_0123456789\n', { mode: 0o600 })
    const withToken = await linked(s, server, 'node-token', [{ ...input, id: 'gated-2' }], { hf_token_file: tokenFile })
    await waitFor(async () => (await replicaOn(s, 'gated-2', withToken.nodeId))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'gated-2 ready' })
    expect(withToken.output()).not.toContain('hf_gated_secret')
    expect(server.requests.filter((r) => r.path.includes('/resolve/')).at(-1)?.authorization).toBe('Bearer hf_gated_secret_0123456789')
  })

  it('downloads once for two pools that need the same file', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.bytesPerSecond = 1_000_000
    const a = await hubPool('tiny-a')
    const b = await hubPool('tiny-b')
    const agent = await linked(s, server, 'node-shared', [a.input, b.input])
    for (const pool of ['tiny-a', 'tiny-b']) {
      await waitFor(async () => (await replicaOn(s, pool, agent.nodeId))?.state === 'ready', { timeoutMs: CEILING_MS, message: `${pool} ready` })
    }
    expect(contentGets(server)).toHaveLength(1)
    expect((await fakeEngineStats(a.engineUrl)).model_sha256).toBe(sha256Of(MODEL))
    expect((await fakeEngineStats(b.engineUrl)).model_sha256).toBe(sha256Of(MODEL))
  })
})

describe('tasks waiting for a download', () => {
  it('a native task for an on-demand pool whose model downloads waits, says `loading` with reason downloading and the progress, then runs', async () => {
    const s = stack()
    const server = await hub()
    server.knobs.bytesPerSecond = 300_000
    const { input } = await hubPool('lazy', { preload: 'on-demand', slots: 1 })
    const agent = await linked(s, server, 'node-lazy-fetch', [input])
    await waitFor(async () => (await replicaOn(s, 'lazy', agent.nodeId))?.state === 'stopped', { timeoutMs: CEILING_MS, message: 'lazy stopped' })
    const { key } = await createKey(s)
    const response = await createTask(s, key, { model: 'lazy', max_tokens: 3 })
    expect(response.status).toBe(202)
    const task = CreateTaskResponse.parse(await response.json())
    const events = await (await openEvents(s, key, task.task_id)).rest()
    const kinds = events.map((e) => e.event.event)
    const loading = events.find((e) => e.event.event === 'loading' && e.event.data.reason === 'downloading')?.event
    expect(loading).toMatchObject({
      event: 'loading',
      data: {
        reason: 'downloading',
        node_id: agent.nodeId,
        message: expect.stringMatching(/^node \S+ is fetching the model: tiny\.gguf \d+% /),
        download: { file: 'tiny.gguf', bytes_total: MODEL.length },
      },
    })
    expect(kinds.indexOf('loading')).toBeLessThan(kinds.indexOf('started'))
    expect(tokenText(events)).toBe(expectedText(3))
  })
})

describe('reload of a fetched model', () => {
  it('fetches the new revision while the old engine serves, then swaps; a failed fetch leaves the old one serving', async () => {
    const s = stack()
    const server = await hub()
    const { input } = await hubPool('tiny', { port: 'auto', command: fakePoolInput('x', ['--model-file', '{model}', '--tokens', '3']).command })
    const agent = await linked(s, server, 'node-reload', [input])
    await waitFor(async () => (await replicaOn(s, 'tiny', agent.nodeId))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'tiny ready' })
    const engineStats = async () => {
      const line =
        agent
          .output()
          .split('\n')
          .filter((l) => l.includes('"event":"replica.spawn"'))
          .at(-1) ?? '{}'
      const { port } = JSON.parse(line) as { port: number }
      return fakeEngineStats(`http://127.0.0.1:${port}`)
    }
    expect((await engineStats()).model_sha256).toBe(sha256Of(MODEL))

    const next = modelBytes(1_200_000, 12)
    server.repos.set('org/tiny', { commit: NEXT_COMMIT, refs: { main: NEXT_COMMIT }, files: { 'tiny.gguf': next } })
    server.knobs.bytesPerSecond = 600_000
    expect((await s.admin('POST', '/v2/pools/tiny/reload', {})).status).toBe(202)
    const during = await waitFor(
      async () => {
        const replica = await replicaOn(s, 'tiny', agent.nodeId)
        return replica?.download ? replica : null
      },
      { timeoutMs: CEILING_MS, message: 'the new revision downloading' },
    )
    expect(during.state).toBe('ready')
    // The new engine answers before the agent has swapped to it; a reload sent before the swap would
    // interrupt it, so the next step waits for the agent to say the swap is done.
    await waitFor(async () => agent.output().includes('"event":"replica.reloaded"'), { timeoutMs: CEILING_MS, message: 'the agent swapped engines' })
    expect((await engineStats()).model_sha256).toBe(sha256Of(next))

    server.knobs.bytesPerSecond = 0
    server.repos.set('org/tiny', { commit: COMMIT, refs: { main: COMMIT }, files: {} })
    expect((await s.admin('POST', '/v2/pools/tiny/reload', {})).status).toBe(202)
    const replica = await waitFor(
      async () => {
        const seen = await replicaOn(s, 'tiny', agent.nodeId)
        return seen?.reason ? seen : null
      },
      { timeoutMs: CEILING_MS, message: 'the failed fetch in the reason' },
    )
    expect(replica.state).toBe('ready')
    expect(replica.reason).toMatch(
      /^reload could not fetch the files, the running engine keeps serving: org\/tiny@main: tiny.gguf: HTTP 404 from http:\/\/127.0.0.1:\d+\/org\/tiny\/resolve\/main\/tiny.gguf/,
    )
    expect((await engineStats()).model_sha256).toBe(sha256Of(next))
  })
})
