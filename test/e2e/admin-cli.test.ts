import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { ApiKeyList, CreateApiKeyResponse, NodeList, PoolCommandResult, PoolList } from '../../protocol/index.ts'
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
    const result = await execa(process.execPath, [CLI, ...args], { reject: false, env: { PATH: process.env.PATH ?? '', LLORCH_STATE_DIR: cleanup.stateDir(), ...env }, extendEnv: false, timeout: 30_000 })
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
    expect(poolsTable.stdout).toMatch(new RegExp(`^POOL\\s+ENGINE\\s+STATE\\s+QUEUE\\s+SLOTS\\s+REPLICAS\\n${POOL}\\s+command\\s+ready\\s+0\\s+0/1\\s+${agent.nodeId}:ready$`))
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
    expect((await llorch([...flags(), 'nodes', 'uncordon', agent.nodeId])).stdout).toBe(`node ${agent.nodeId} (cli-node) uncordoned; each pool's policy decides what starts on it`)
    const policySet = await llorch([...flags(), 'pools', 'set', POOL, '--idle-drain-ms', '60000', '--queue-timeout-ms', '300000', '--preload-mode', 'on-demand'])
    expect(policySet.stdout).toBe(`pool ${POOL}: preload_mode=on-demand idle_drain_ms=60000 queue_timeout_ms=300000`)

    const created = await llorch([...flags(), '--json', 'keys', 'create', 'ci-key', '--scope', 'inference'])
    const key = CreateApiKeyResponse.parse(JSON.parse(created.stdout))
    expect(key.key).toMatch(/^llk\./)
    const createdTable = await llorch([...flags(), 'keys', 'create', 'other-key'])
    expect(createdTable.stdout).toMatch(/^key key_\S+ \(other-key, inference\) created\nkey \(shown once\): llk\.\S+$/)
    const keysTable = await llorch([...flags(), 'keys', 'list'])
    expect(keysTable.stdout).toMatch(new RegExp(`\\n${key.id}\\s+ci-key\\s+${key.prefix.replaceAll('.', '\\.')}\\s+inference\\s+\\S+\\s+-\\n`))
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
