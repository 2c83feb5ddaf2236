import { createClient } from '@libsql/client'
import { execa, type ResultPromise } from 'execa'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { z } from 'zod'
import { startLibsqlServer } from '../../db/libsql-server/index.ts'
import { readProcStat } from '../../node-agent/process/proc-stat.ts'
import { CreateApiKeyResponse, NodeList, PoolView, UsageReport } from '../../protocol/index.ts'
import { startControlPlane } from '../../scripts/local/control-plane.ts'
import { applyMigrations } from '../../scripts/local/migrate.ts'
import { FAKE_ENGINE, REPO_ROOT, enginePidsIn, isAlive, useProcessCleanup, waitFor } from '../support/processes.ts'

/** Bundling the Worker and three CLIs, and packing Node and workerd, on a loaded machine. */
const BUILD_TIMEOUT_MS = 240_000
const START_CEILING_MS = 90_000
/** A PATH without the pinned Node: only the release's own Node and workerd may run. */
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin'
const POOL = 'home-model'

const version = z.object({ version: z.string() }).parse(JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'))).version
const cleanup = useProcessCleanup()
let work: string
let unpacked: string

/** Installs the unpacked release under a new scratch root; returns the root. */
async function install(name: string): Promise<string> {
  const root = path.join(work, name)
  const result = await execa(path.join(unpacked, 'install.sh'), ['--root', root], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
  expect(result.stdout).toContain(`staging install under ${root}: no user created, nothing chowned, systemctl not run`)
  return root
}

/** Every process whose process group is `pgid`, with its argv. */
function processGroup(pgid: number): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = []
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (Number(readProcStat(Number(entry))?.fields[2]) !== pgid) continue
      found.push({ pid: Number(entry), argv: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean) })
    } catch {
      // gone meanwhile
    }
  }
  return found
}

interface Served {
  process: ResultPromise
  pid: number
  url: string
  output(): string
}

/** `llorch serve` from an installed root, in its own process group, once it says where it listens. */
async function serve(root: string, args: string[] = []): Promise<Served> {
  const child = execa(path.join(root, 'usr/local/bin/llorch'), ['serve', '--state-dir', path.join(root, 'var/lib/llorch'), '--port', '0', ...args], {
    env: { PATH: SYSTEM_PATH },
    extendEnv: false,
    detached: true,
    all: true,
    reject: false,
    stdin: 'ignore',
  })
  if (child.pid === undefined) throw new Error('llorch serve did not start')
  const pid = child.pid
  cleanup.track(pid)
  let output = ''
  let exited = false
  void child.then(() => (exited = true))
  child.all.setEncoding('utf8')
  child.all.on('data', (chunk: string) => (output += chunk))
  const url = await waitFor(() => /control plane at (\S+) \(workerd serve/.exec(output)?.[1] ?? (exited ? 'exited' : null), {
    timeoutMs: START_CEILING_MS,
    intervalMs: 100,
    message: `llorch serve to listen; output so far:\n${output}`,
  })
  if (url === 'exited') throw new Error(`llorch serve exited: ${output}`)
  return { process: child, pid, url, output: () => output }
}

function adminFor(url: string, token: string) {
  return (method: string, route: string, body?: unknown) =>
    fetch(`${url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
}

async function streamed(url: string, apiKey: string): Promise<string> {
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 })
  let text = ''
  for await (const chunk of await openai.chat.completions.create({
    model: POOL,
    stream: true,
    max_tokens: 4,
    messages: [{ role: 'user', content: 'Hello' }],
  })) {
    text += chunk.choices[0]?.delta.content ?? ''
  }
  return text
}

async function poolReady(admin: ReturnType<typeof adminFor>): Promise<void> {
  await waitFor(
    async () => {
      const response = await admin('GET', `/v2/pools/${POOL}`)
      return response.status === 200 && PoolView.parse(await response.json()).state === 'ready'
    },
    { timeoutMs: START_CEILING_MS, intervalMs: 200, message: `pool ${POOL} ready` },
  )
}

async function usageOf(admin: ReturnType<typeof adminFor>, keyId: string): Promise<number> {
  const report = UsageReport.parse(await (await admin('GET', '/v2/usage?group_by=key')).json())
  return report.groups.find((g) => g.group === keyId)?.requests ?? 0
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'llorch-serve-release-'))
  const built = await execa(process.execPath, [path.join(REPO_ROOT, 'scripts/build-server.ts'), '--out-dir', path.join(work, 'dist')], { cwd: REPO_ROOT })
  const tarball = built.stdout.split('\n')[0] ?? ''
  expect(tarball).toBe(path.join(work, 'dist', `llorch-server-${version}-linux-${process.arch}.tar.gz`))
  mkdirSync(path.join(work, 'unpacked'))
  await execa('tar', ['-C', path.join(work, 'unpacked'), '-xzf', tarball])
  unpacked = path.join(work, 'unpacked', `llorch-server-${version}-linux-${process.arch}`)
}, BUILD_TIMEOUT_MS)
afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

describe('llorch serve from the server release (npm run build:server)', () => {
  it('serves the deploy bundle in workerd serve with a local agent, keeps keys, nodes and usage across kill -9 of everything, backs up, restores and exports', async () => {
    const root = await install('root')
    const stateDir = path.join(root, 'var/lib/llorch')
    const agentConfig = path.join(root, 'etc/llorch/agent.json')
    writeFileSync(
      agentConfig,
      JSON.stringify({
        log_level: 'warn',
        pools: [
          {
            id: POOL,
            engine: 'command',
            command: ['{node}', FAKE_ENGINE, '--port', '{port}', '--slots', '{slots}', '--model-name', '{pool}'],
            slots: 2,
            start_timeout_ms: 30_000,
          },
        ],
      }),
    )
    cleanup.defer(() => {
      for (const pid of enginePidsIn(path.join(stateDir, 'agent'))) cleanup.track(pid)
    })

    const first = await serve(root, ['--agent-config', agentConfig])
    const group = processGroup(first.pid)
    expect(group.some(({ argv }) => argv[0] === path.join(root, 'opt/llorch/bin/workerd') && argv[1] === 'serve')).toBe(true)
    expect(group.some(({ argv }) => argv.join(' ').includes('miniflare'))).toBe(false)

    const tokenFile = path.join(stateDir, 'admin-token')
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600)
    const adminToken = readFileSync(tokenFile, 'utf8').trim()
    expect(first.output()).toContain(`wrote the admin token to ${tokenFile} (mode 0600); it is not printed`)
    expect(first.output()).not.toContain(adminToken)
    const admin = adminFor(first.url, adminToken)

    // The registry answers only on loopback, and only with the Worker's credential.
    const libsqlUrl = z.object({ libsqlUrl: z.string() }).parse(JSON.parse(readFileSync(path.join(stateDir, 'run/serve.json'), 'utf8'))).libsqlUrl
    expect(new URL(libsqlUrl).hostname).toBe('127.0.0.1')
    const anonymous = await fetch(`${libsqlUrl}/v2/pipeline`, {
      method: 'POST',
      body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql: 'SELECT id FROM api_keys' } }] }),
    })
    expect(anonymous.status).toBe(401)

    const key = CreateApiKeyResponse.parse(await (await admin('POST', '/v2/api-keys', { name: 'home', scopes: ['inference'] })).json())
    await poolReady(admin)
    expect(await streamed(first.url, key.key)).toBe('tok0 tok1 tok2 tok3')
    await waitFor(async () => (await usageOf(admin, key.id)) === 1, { timeoutMs: 30_000, intervalMs: 250, message: 'the request in usage' })
    const nodes = NodeList.parse(await (await admin('GET', '/v2/nodes')).json()).nodes
    expect(nodes).toHaveLength(1)
    const node = nodes[0]
    expect(node?.status).toBe('online')
    expect((await admin('PATCH', `/v2/pools/${POOL}`, { queue_capacity: 7 })).status).toBe(200)

    // kill -9 of llorch serve, workerd, the libSQL server and the agent at once.
    const engines = enginePidsIn(path.join(stateDir, 'agent'))
    expect(engines).toHaveLength(1)
    process.kill(-first.pid, 'SIGKILL')
    await waitFor(() => processGroup(first.pid).length === 0 && engines.every((pid) => !isAlive(pid)), {
      timeoutMs: 15_000,
      message: 'every process of llorch serve gone',
    })

    const second = await serve(root, ['--agent-config', agentConfig])
    const adminAgain = adminFor(second.url, adminToken)
    await poolReady(adminAgain)
    expect(await streamed(second.url, key.key)).toBe('tok0 tok1 tok2 tok3')
    expect(NodeList.parse(await (await adminAgain('GET', '/v2/nodes')).json()).nodes.map((n) => n.id)).toEqual([node?.id])
    await waitFor(async () => (await usageOf(adminAgain, key.id)) >= 2, { timeoutMs: 30_000, intervalMs: 250, message: 'both requests in usage' })

    // workerd and the registry, each killed alone, are started again and serve as before.
    const Running = z.object({ workerdPid: z.int(), libsqlPid: z.int() })
    const running = () => Running.parse(JSON.parse(readFileSync(path.join(stateDir, 'run/serve.json'), 'utf8')))
    for (const child of ['workerd', 'libsql'] as const) {
      const before = running()
      process.kill(child === 'workerd' ? before.workerdPid : before.libsqlPid, 'SIGKILL')
      await waitFor(() => second.output().includes(`"event":"serve.child_exited","child":"${child}","code":null,"signal":"SIGKILL"`), {
        message: `${child} seen dead`,
      })
      await waitFor(
        async () => (await fetch(`${second.url}/v1/models`, { headers: { Authorization: `Bearer ${key.key}` } }).catch(() => null))?.status === 200,
        { timeoutMs: 30_000, intervalMs: 200, message: `serving again after ${child} restarted` },
      )
    }
    await poolReady(adminAgain)
    expect(await streamed(second.url, key.key)).toBe('tok0 tok1 tok2 tok3')

    // A backup while serving, then SIGTERM: agent (and its engine), workerd, registry, in order.
    const llorch = path.join(root, 'usr/local/bin/llorch')
    const backupDir = path.join(work, 'backup')
    const backedUp = await execa(llorch, ['serve', 'backup', backupDir, '--state-dir', stateDir], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
    expect(backedUp.stdout).toContain(`backup of ${stateDir} in ${backupDir}`)
    expect((await streamed(second.url, key.key)).length).toBeGreaterThan(0)
    const engineNow = enginePidsIn(path.join(stateDir, 'agent')).filter(isAlive)
    // process.kill, not execa's kill: that one adds a SIGKILL after 5 s, and the agent drains first.
    process.kill(second.pid, 'SIGTERM')
    expect((await second.process).exitCode, second.output()).toBe(0)
    const stopped = [...second.output().matchAll(/"event":"serve.child_stopped","child":"(\w+)"/g)].map((m) => m[1])
    expect(stopped).toEqual(['agent', 'workerd', 'libsql'])
    expect(engineNow.filter(isAlive)).toEqual([])

    // Installing again over the same root (an upgrade) replaces /opt/llorch and keeps the state.
    const again = await execa(path.join(unpacked, 'install.sh'), ['--root', root], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
    expect(again.stdout).toContain(`settings: ${path.join(root, 'etc/llorch/serve.env')} exists, left alone`)
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(adminToken)

    // doctor reads the state the release left: permissions, migrations; a loose token file fails it.
    const doctorArgs = ['serve', 'doctor', '--state-dir', stateDir, '--port', new URL(second.url).port]
    const healthy = await execa(llorch, doctorArgs, { env: { PATH: SYSTEM_PATH }, extendEnv: false, reject: false })
    expect(healthy.exitCode, healthy.stdout).toBe(0)
    expect(healthy.stdout).toMatch(/^ok +migrations +the registry has all \d+ migrations of llorch/m)
    chmodSync(tokenFile, 0o644)
    const loose = await execa(llorch, doctorArgs, { env: { PATH: SYSTEM_PATH }, extendEnv: false, reject: false })
    expect(loose.exitCode).toBe(1)
    expect(loose.stdout).toContain(`fix: chmod 600 ${tokenFile}`)
    chmodSync(tokenFile, 0o600)

    // The backup onto a new root answers the same key, admin token and node.
    const restoredRoot = await install('restored')
    const restored = await execa(
      path.join(restoredRoot, 'usr/local/bin/llorch'),
      ['serve', 'restore', backupDir, '--state-dir', path.join(restoredRoot, 'var/lib/llorch')],
      { env: { PATH: SYSTEM_PATH }, extendEnv: false },
    )
    expect(restored.stdout).toContain(`into ${path.join(restoredRoot, 'var/lib/llorch')}`)
    const third = await serve(restoredRoot)
    expect((await fetch(`${third.url}/v1/models`, { headers: { Authorization: `Bearer ${key.key}` } })).status).toBe(200)
    const adminRestored = adminFor(third.url, adminToken)
    expect(NodeList.parse(await (await adminRestored('GET', '/v2/nodes')).json()).nodes.map((n) => n.id)).toEqual([node?.id])
    expect(await usageOf(adminRestored, key.id)).toBeGreaterThanOrEqual(2)
    process.kill(third.pid, 'SIGTERM')
    expect((await third.process).exitCode, third.output()).toBe(0)

    // The export loads into a fresh registry; a fresh control plane on it takes the old credentials.
    const dump = path.join(work, 'dump.sql')
    await execa(llorch, ['serve', 'export', '--state-dir', stateDir, '--out', dump], { env: { PATH: SYSTEM_PATH }, extendEnv: false })
    const fresh = path.join(work, 'fresh')
    const libsql = await startLibsqlServer({ file: path.join(fresh, 'registry.db'), authToken: 'fresh-registry-token' })
    cleanup.defer(() => libsql.close())
    const client = createClient({ url: libsql.url, authToken: 'fresh-registry-token' })
    await client.executeMultiple(readFileSync(dump, 'utf8'))
    client.close()
    await applyMigrations({ url: libsql.url, authToken: 'fresh-registry-token' })
    const cloud = await startControlPlane({
      bundlePath: inject('workerBundlePath'),
      persistPath: path.join(fresh, 'workerd'),
      bindings: { LIBSQL_URL: libsql.url, LIBSQL_AUTH_TOKEN: 'fresh-registry-token', ADMIN_TOKEN: 'fresh-admin-token-0123456789' },
    })
    cleanup.defer(() => cloud.stop())
    const cloudUrl = cloud.url.toString().replace(/\/$/, '')
    expect((await fetch(`${cloudUrl}/v1/models`, { headers: { Authorization: `Bearer ${key.key}` } })).status).toBe(200)
    const nodeToken = readFileSync(path.join(stateDir, 'local-node-token'), 'utf8').trim()
    // Without the upgrade, the agent endpoint says whether the token is accepted (426) or not (401).
    expect((await fetch(`${cloudUrl}/v2/agent/connect`, { headers: { Authorization: `Bearer ${nodeToken}` } })).status).toBe(426)
    const pool = PoolView.parse(await (await adminFor(cloudUrl, 'fresh-admin-token-0123456789')('GET', `/v2/pools/${POOL}`)).json())
    expect(pool.policy.queue_capacity).toBe(7)
  })
})
