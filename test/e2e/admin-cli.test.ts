import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { ApiKeyList, CreateApiKeyResponse, CreateNodeResponse, LLORCH_VERSION, NodeList, PoolCommandResult, PoolList, PoolView } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import { REPO_ROOT, useProcessCleanup, waitFor } from '../support/processes.ts'

const CLI = path.join(REPO_ROOT, 'cli/llorch.ts')
const POOL = 'cli-model'
const CEILING_MS = 20_000

describe('llorch, the admin CLI, against the local stack', () => {
  const cleanup = useProcessCleanup()
  const stackOf = useStack({ heartbeatIntervalMs: 200 })

  /** Runs the CLI with no inherited LLORCH_* settings, only what the test passes; execa strips the last newline. */
  async function llorch(args: string[], env: Record<string, string> = {}) {
    const result = await execa(process.execPath, [CLI, ...args], {
      reject: false,
      env: { PATH: process.env.PATH ?? '', LLORCH_STATE_DIR: cleanup.stateDir(), ...env },
      extendEnv: false,
      timeout: 30_000,
    })
    return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) }
  }
  const flags = () => ['--url', stackOf().url.toString(), '--admin-token', TEST_ADMIN_TOKEN]
  const replicaState = async () => (await getPool(stackOf(), POOL))?.replicas[0]?.state

  it('lists, drains and preloads pools and nodes, and creates, lists and revokes keys, as tables and as JSON', async () => {
    const stack = stackOf()
    const agent = await startLinkedAgent(cleanup, stack, { name: 'cli-node', pools: [fakePoolInput(POOL)] })
    await waitFor(async () => (await replicaState()) === 'ready', { timeoutMs: CEILING_MS, message: `pool ${POOL} ready` })

    const nodesTable = await llorch([...flags(), 'nodes', 'list'])
    expect(nodesTable.code).toBe(0)
    const [head, ...rows] = nodesTable.stdout.split('\n')
    expect(head).toMatch(/^ID\s+NAME\s+STATUS\s+HOST\s+GPUS\s+LAST SEEN\s+REPLICAS$/)
    expect(rows).toEqual([expect.stringMatching(new RegExp(`^${agent.nodeId}\\s+cli-node\\s+online\\s+.*${POOL}:ready$`))])

    // From the environment, as JSON.
    const fromEnv = { LLORCH_URL: stack.url.toString(), LLORCH_ADMIN_TOKEN: TEST_ADMIN_TOKEN }
    const nodesJson = await llorch(['--json', 'nodes', 'list'], fromEnv)
    expect(NodeList.parse(JSON.parse(nodesJson.stdout)).nodes.map((n) => n.id)).toEqual([agent.nodeId])

    // From the local.json that npm start writes.
    const stateDir = cleanup.stateDir()
    writeFileSync(path.join(stateDir, 'local.json'), JSON.stringify({ url: stack.url.toString(), libsqlUrl: stack.libsql.url, adminToken: TEST_ADMIN_TOKEN }))
    const poolsTable = await llorch(['pools', 'list'], { LLORCH_STATE_DIR: stateDir })
    expect(poolsTable.stdout).toMatch(
      new RegExp(`^POOL\\s+ENGINE\\s+STATE\\s+QUEUE\\s+SLOTS\\s+REPLICAS\\n${POOL}\\s+command\\s+ready\\s+0\\s+0/1\\s+${agent.nodeId}:ready$`),
    )
    expect(PoolList.parse(JSON.parse((await llorch(['pools', 'list', '--json'], { LLORCH_STATE_DIR: stateDir })).stdout)).pools[0]?.id).toBe(POOL)

    const drained = await llorch([...flags(), 'pools', 'drain', POOL, '--deadline-ms', '1000'])
    expect(drained).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^NODE\\s+DRAIN\\s+ERROR\\n${agent.nodeId}\\s+sent$`)) })
    await waitFor(async () => (await replicaState()) === 'stopped', { timeoutMs: CEILING_MS, message: 'replica stopped after llorch pools drain' })
    const preloaded = await llorch([...flags(), '--json', 'pools', 'preload', POOL])
    expect(PoolCommandResult.parse(JSON.parse(preloaded.stdout)).nodes).toEqual([{ node_id: agent.nodeId, ok: true, error: null }])
    await waitFor(async () => (await replicaState()) === 'ready', { timeoutMs: CEILING_MS, message: 'replica ready after llorch pools preload' })
    const nodeDrained = await llorch([...flags(), 'nodes', 'drain', agent.nodeId])
    expect(nodeDrained.stdout).toMatch(new RegExp(`^POOL\\s+DRAIN\\s+ERROR\\n${POOL}\\s+sent$`))
    await waitFor(async () => (await replicaState()) === 'stopped', { timeoutMs: CEILING_MS, message: 'replica stopped after llorch nodes drain' })
    expect(NodeList.parse(JSON.parse((await llorch([...flags(), '--json', 'nodes', 'list'])).stdout)).nodes[0]?.cordoned_at).not.toBeNull()
    expect((await llorch([...flags(), 'nodes', 'uncordon', agent.nodeId])).stdout).toBe(
      `node ${agent.nodeId} (cli-node) uncordoned; each pool's policy decides what starts on it`,
    )
    const policySet = await llorch([
      ...flags(),
      'pools',
      'set',
      POOL,
      '--idle-drain-ms',
      '60000',
      '--queue-timeout-ms',
      '300000',
      '--preload-mode',
      'on-demand',
    ])
    expect(policySet.stdout).toBe(`pool ${POOL}: preload_mode=on-demand idle_drain_ms=60000 queue_timeout_ms=300000`)

    const created = await llorch([...flags(), '--json', 'keys', 'create', 'ci-key', '--scope', 'inference'])
    const key = CreateApiKeyResponse.parse(JSON.parse(created.stdout))
    expect(key.key).toMatch(/^llk\./)
    const createdTable = await llorch([...flags(), 'keys', 'create', 'other-key'])
    expect(createdTable.stdout).toMatch(/^key key_\S+ \(other-key, inference\) created\nkey \(shown once\): llk\.\S+$/)
    const keysTable = await llorch([...flags(), 'keys', 'list'])
    expect(keysTable.stdout).toMatch(new RegExp(`\\n${key.id}\\s+ci-key\\s+${key.prefix.replaceAll('.', '\\.')}\\s+inference\\s+-\\s+\\S+\\s+-\\n`))
    expect(keysTable.stdout).not.toContain(key.key)
    expect((await llorch([...flags(), 'keys', 'revoke', key.id])).stdout).toBe(`key ${key.id} (ci-key) revoked`)
    const keys = ApiKeyList.parse(JSON.parse((await llorch([...flags(), '--json', 'keys', 'list'])).stdout))
    expect(keys.api_keys.find((k) => k.id === key.id)?.revoked_at).not.toBeNull()

    const usage = await llorch([...flags(), 'usage', '--group-by', 'pool'])
    expect(usage.stdout).toMatch(/^POOL\s+REQUESTS\s+PROMPT\s+COMPLETION\s+TOTAL\ntotal\s+0\s+0\s+0\s+0$/)

    const top = await llorch([...flags(), 'top', '--iterations', '2', '--interval', '50'])
    expect(top.code).toBe(0)
    expect(top.stdout.match(/^llorch top /gm)).toHaveLength(2)
    expect(top.stdout).toMatch(new RegExp(`\\n${POOL}\\s+unavailable\\s+0\\s+0/0\\s+`))
    expect(top.stdout).toMatch(new RegExp(`\\n${agent.nodeId}\\s+cli-node\\s+online\\s+`))
  })

  it('sets every policy field and key limit the README names, and shows them back', async () => {
    const stack = stackOf()
    const added = await llorch([...flags(), 'nodes', 'add', 'cli-node', '--label', 'rack=b'])
    expect(added.stdout).toMatch(/^node (node_\S+) \(cli-node\) registered\ntoken \(shown once; put it in the agent's node_token_file\): \S+$/)
    const nodeId = /^node (\S+)/.exec(added.stdout)?.[1] ?? ''
    const token = /: (\S+)$/.exec(added.stdout)?.[1] ?? ''
    await startLinkedAgent(cleanup, stack, { name: 'cli-node', node: { id: nodeId, token }, pools: [fakePoolInput(POOL)] })
    await waitFor(async () => (await replicaState()) === 'ready', { timeoutMs: CEILING_MS, message: `pool ${POOL} ready` })
    expect((await llorch([...flags(), 'nodes', 'show', nodeId])).stdout).toMatch(new RegExp(`^ID\\s+NAME\\s+STATUS[^\\n]*\\n${nodeId}\\s+cli-node\\s+online`))

    const policy = await llorch([
      ...flags(),
      'pools',
      'set',
      POOL,
      '--idle-drain-ms',
      'off',
      '--batch-aging-ms',
      '5000',
      '--first-token-timeout-ms',
      '20000',
      '--idle-timeout-ms',
      '15000',
      '--run-timeout-ms',
      '600000',
      '--scale-out-wait-ms',
      '8000',
      '--queue-capacity',
      '32',
      '--default-priority',
      'batch',
      '--key-requests-per-minute',
      '600',
      '--key-token-budget',
      '1000000/month',
    ])
    expect(policy).toMatchObject({ code: 0, stderr: '' })
    expect(policy.stdout).toBe(
      `pool ${POOL}: queue_capacity=32 idle_drain_ms=off default_priority=batch first_token_timeout_ms=20000 idle_timeout_ms=15000 batch_aging_ms=5000 key_limits=requests_per_minute=600,token_budget=1000000/month run_timeout_ms=600000 scale_out_wait_ms=8000`,
    )
    // A second key-limit flag changes its field and keeps the others.
    await llorch([...flags(), 'pools', 'set', POOL, '--key-max-concurrent', '4', '--key-requests-per-minute', 'none'])
    const shown = await llorch([...flags(), 'pools', 'show', POOL])
    expect(shown.stdout).toContain('key_limits=requests_per_minute=none,max_concurrent=4,token_budget=1000000/month ')
    expect(shown.stdout).not.toContain('[object Object]')
    const view = PoolView.parse(JSON.parse((await llorch([...flags(), '--json', 'pools', 'show', POOL])).stdout))
    expect(view.policy).toMatchObject({
      idle_drain_ms: null,
      batch_aging_ms: 5000,
      key_limits: { requests_per_minute: null, max_concurrent: 4, token_budget: { tokens: 1_000_000, period: 'month' } },
    })

    const created = await llorch([...flags(), 'keys', 'create', 'limited', '--requests-per-minute', '60', '--token-budget', '5000/day'])
    expect(created.stdout).toMatch(/^key (key_\S+) \(limited, inference, limits requests_per_minute=60,token_budget=5000\/day\) created\n/)
    const keyId = /^key (\S+)/.exec(created.stdout)?.[1] ?? ''
    const changed = await llorch([...flags(), 'keys', 'set', keyId, '--max-concurrent', '2', '--token-budget', 'default'])
    expect(changed.stdout).toBe(`key ${keyId} (limited): limits requests_per_minute=60,max_concurrent=2`)
    expect((await llorch([...flags(), 'keys', 'list'])).stdout).toMatch(
      new RegExp(`\\n?${keyId}\\s+limited\\s+\\S+\\s+inference\\s+requests_per_minute=60,max_concurrent=2\\s`),
    )
    const keys = ApiKeyList.parse(JSON.parse((await llorch([...flags(), '--json', 'keys', 'list'])).stdout))
    expect(keys.api_keys.find((k) => k.id === keyId)?.limits).toEqual({ requests_per_minute: 60, max_concurrent: 2 })
    expect(await llorch([...flags(), 'keys', 'set', keyId, '--max-concurrent', 'lots'])).toMatchObject({
      code: 2,
      stderr: 'llorch: --max-concurrent: expected a positive integer or none or default, got "lots"',
    })
    expect(await llorch([...flags(), 'keys', 'set', 'key_nope', '--max-concurrent', '1'])).toMatchObject({
      code: 1,
      stderr: 'llorch: no API key with id "key_nope" (llorch keys list shows them)',
    })

    const reloaded = await llorch([...flags(), 'pools', 'reload', POOL])
    expect(reloaded).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^NODE\\s+RELOAD\\s+ERROR\\n${nodeId}\\s+sent$`)) })
    const revoked = await llorch([...flags(), 'nodes', 'revoke', nodeId])
    expect(revoked.stdout).toBe(`node ${nodeId} (cli-node) revoked; its agent was disconnected`)
  })

  it('shows one presence for each node in nodes list, nodes show and top: the last heartbeat, and new for a node never connected', async () => {
    const stack = stackOf()
    const idle = await llorch([...flags(), '--json', 'nodes', 'add', 'idle-node'])
    const idleId = CreateNodeResponse.parse(JSON.parse(idle.stdout)).id
    const agent = await startLinkedAgent(cleanup, stack, { name: 'live-node', pools: [fakePoolInput(POOL)] })
    await waitFor(async () => (await replicaState()) === 'ready', { timeoutMs: CEILING_MS, message: `pool ${POOL} ready` })
    // The registry's last_seen_at is written on hello and once a minute; heartbeats come every 200 ms.
    const helloAt = Date.now()
    await waitFor(() => Date.now() - helloAt >= 3_000, { timeoutMs: 10_000, intervalMs: 100, message: 'three seconds after the hello' })

    const listed = (await llorch([...flags(), 'nodes', 'list'])).stdout.split('\n')
    expect(listed.find((line) => line.startsWith(agent.nodeId))).toMatch(/\sonline\s.*\s[01]s ago\s/)
    expect(listed.find((line) => line.startsWith(idleId))).toMatch(/^\S+\s+idle-node\s+new\s+-\s+-\s+-\s+-$/)
    expect((await llorch([...flags(), 'nodes', 'show', agent.nodeId])).stdout.split('\n')[1]).toMatch(/\sonline\s.*\s[01]s ago\s/)
    const shown = NodeList.parse(JSON.parse((await llorch([...flags(), '--json', 'nodes', 'list'])).stdout)).nodes.find((n) => n.id === agent.nodeId)
    expect(Date.now() - Date.parse(shown?.last_seen_at ?? '')).toBeLessThan(2_000)

    const top = (await llorch([...flags(), 'top', '--iterations', '1'])).stdout
    expect(top).toMatch(new RegExp(`\\n${idleId}\\s+idle-node\\s+new\\s+-\\s`))
    expect(top).toMatch(new RegExp(`\\n${agent.nodeId}\\s+live-node\\s+online\\s+\\d+\\.\\ds\\s`))
  })

  it('says what to do when the URL, the token or an id is wrong', async () => {
    const stack = stackOf()
    const noUrl = await llorch(['nodes', 'list'])
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toContain('no control plane URL: pass --url, set LLORCH_URL, or run npm start')

    const badToken = await llorch(['--url', stack.url.toString(), '--admin-token', 'not-the-admin-token', 'nodes', 'list'])
    expect(badToken.code).toBe(1)
    expect(badToken.stderr).toContain('answered 401')
    expect(badToken.stderr).toContain('the admin token was refused; check --admin-token or LLORCH_ADMIN_TOKEN')

    const unknown = await llorch([...flags(), 'nodes', 'show', 'node_nope'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toBe('llorch: GET /v2/nodes/node_nope answered 404 (not_found: no node with id "node_nope")')

    const badFlag = await llorch([...flags(), 'pools', 'set', POOL, '--queue-capacity', 'many'])
    expect(badFlag).toMatchObject({ code: 2, stderr: 'llorch: --queue-capacity: expected a non-negative integer, got "many"' })

    const unreachable = await llorch(['--url', 'http://127.0.0.1:9', '--admin-token', TEST_ADMIN_TOKEN, 'pools', 'list'])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toContain('cannot reach http://127.0.0.1:9')
  })
})

describe("npx llorch on the machine's own Node", () => {
  it('prints the version and no npm engine warning when npm runs on the system Node', async () => {
    // Without node_modules/.bin on PATH, npx runs on the system Node, as in an operator's shell;
    // a fresh npm cache, because npx checks `engines` when it first links the project there.
    const PATH = (process.env.PATH ?? '')
      .split(path.delimiter)
      .filter((dir) => !dir.includes('node_modules'))
      .join(path.delimiter)
    const cache = mkdtempSync(path.join(tmpdir(), 'llorch-npx-cache-'))
    try {
      const result = await execa('npx', ['llorch', '--version'], {
        cwd: REPO_ROOT,
        reject: false,
        env: { PATH, HOME: process.env.HOME ?? '', npm_config_cache: cache },
        extendEnv: false,
        timeout: 60_000,
      })
      expect({ code: result.exitCode, stderr: String(result.stderr) }).toEqual({ code: 0, stderr: '' })
      expect(String(result.stdout)).toBe(LLORCH_VERSION)
    } finally {
      rmSync(cache, { recursive: true, force: true })
    }
  })
})
