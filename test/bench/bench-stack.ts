import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { z } from 'zod'
import { resolvePort } from '../../node-agent/process/port.ts'
import { CreateApiKeyResponse, CreateNodeResponse, DebugCosts, PoolCeilingResult, PoolView } from '../../protocol/index.ts'
import type { PoolCeilingRequest } from '../../protocol/index.ts'
import { buildWorker } from '../../scripts/local/build-worker.ts'
import { PROJECT_ROOT } from '../../scripts/local/project-root.ts'
import { startControlPlane } from '../../scripts/local/control-plane.ts'
import { applyMigrations } from '../../scripts/local/migrate.ts'
import { readRunning, statePaths } from '../../serve/state-dir.ts'
import { profileNode, profileWorkerd } from './cpu-profile.ts'
import type { Profiling } from './cpu-profile.ts'
import { cpuMsOf, descendantsNamed } from './process-cpu.ts'
import { spawnLogged, stopLogged, waitUntil, type LoggedProcess } from './logged-process.ts'
import type { Reaper } from './reaper.ts'
import type { BenchPool } from './scenarios.ts'

const FAKE_ENGINE = path.join(PROJECT_ROOT, 'test/fixtures/fake-engine.ts')
const AGENT_CLI = path.join(PROJECT_ROOT, 'node-agent/cli.ts')
const LIBSQL_CLI = path.join(PROJECT_ROOT, 'db/libsql-server/cli.ts')
const LLORCH_CLI = path.join(PROJECT_ROOT, 'cli/llorch.ts')
/** The Worker's name as Miniflare runs it (`scripts/local/control-plane.ts`); its inspector target is named for it. */
const WORKER_NAME = 'llorch'
/** Far more than any request asks for: `max_tokens` sets each request's length. */
const ENGINE_TOKEN_CAP = 10_000_000
const READY_TIMEOUT_MS = 60_000
/** The agent drains for this long on SIGTERM; the bench waits this plus a margin before SIGKILL. */
const AGENT_DRAIN_MS = 2_000
const ENGINE_STOP_GRACE_MS = 2_000

export interface BenchStack {
  /** `http://127.0.0.1:PORT/v1`, the llorch API. */
  apiUrl: string
  apiKey: string
  /** Base URL of each pool's engine process, the one the first agent supervises. */
  engineUrls: Map<string, string>
  /** Every engine of each pool, one per replica (per agent). */
  replicaEngineUrls: Map<string, string[]>
  /** What the control plane has spent so far: Durable Object entry points and writes, libSQL round trips. */
  costs(): Promise<CostSnapshot>
  /** Calls the admin API with the plane's admin token; JSON in and out, null for a 404. */
  admin(method: string, route: string, body?: unknown): Promise<unknown>
  /** Runs `POST /v2/debug/pool-ceiling`: how many tasks per second one PoolObject admits and releases. */
  poolCeiling(spec: PoolCeilingRequest): Promise<PoolCeilingResult>
  /** CPU time used so far by workerd (Worker and objects) and by the agents, in ms (0 where /proc is missing). */
  cpuMs(): ProcessCpu
  /** With `profile`: starts V8's profiler in workerd and in the first agent. */
  profile: (() => Promise<{ workerd: Profiling; agent: Profiling }>) | null
  /** With `profile`: the source map of the bundled Worker the profile's positions point into. */
  workerSourceMap: string | null
  /** Orderly stop: the agent drains and stops its engines, then workerd and libSQL stop; the reaper sweeps last. */
  stop(): Promise<void>
}

type Say = (line: string) => void

export interface ProcessCpu {
  workerd: number
  agents: number
}

export interface CostSnapshot {
  entryPoints: Record<string, number>
  dispatches: number
  legsBeforeDispatch: number
  storageWrites: number
  libsqlPipelines: number
}

const LibsqlStats = z.object({ pipelines: z.number() })

/**
 * Runs the llorch control plane as `npm start` does (or, with `serve`, as `llorch serve` does),
 * with each piece as its own process: the local libSQL server (migrated), the Worker bundled by
 * wrangler in workerd, and a `llorch-agent`
 * serving one fake-engine pool per `BenchPool` on a fixed port, so the bench can also call the
 * very same engine directly; a pool with more replicas gets one more agent (and node) per
 * replica. Everything started is tracked by `reaper`.
 */
export async function startBenchStack({
  pools,
  reaper,
  say,
  serve = false,
  profile = false,
}: {
  pools: BenchPool[]
  reaper: Reaper
  say: Say
  serve?: boolean
  /** Opens the inspectors of workerd and of the first agent, for `profile()`. */
  profile?: boolean
}): Promise<BenchStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-bench-'))
  reaper.trackDir(dir)
  const stops: (() => Promise<void>)[] = []
  let stopped: Promise<void> | null = null
  const stop = () =>
    (stopped ??= (async () => {
      for (const step of stops.reverse()) await step().catch(() => {})
      reaper.reapNow()
    })())
  try {
    const plane = serve ? await startServePlane(dir, reaper, say) : await startMiniflarePlane(dir, reaper, say, profile)
    stops.push(plane.stop)
    const { adminToken, libsqlUrl } = plane
    const admin = async (method: string, route: string, body?: unknown): Promise<unknown> => {
      const response = await fetch(new URL(route, plane.url), {
        method,
        headers: { Authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      if (!response.ok && response.status !== 404) throw new Error(`${method} ${route} answered ${response.status}: ${await response.text()}`)
      return response.status === 404 ? null : response.json()
    }
    const { key } = CreateApiKeyResponse.parse(await admin('POST', '/v2/api-keys', { name: 'bench', scopes: ['inference'] }))
    const replicaEngineUrls = new Map<string, string[]>()
    const agentPids: number[] = []
    const agentInspectorPort = profile ? await resolvePort({ port: 'auto', host: '127.0.0.1' }) : null

    /** Registers a node and runs one agent for it serving `served`, each on a fake engine of its own port; waits for their replicas. */
    const startAgent = async (name: string, served: BenchPool[]) => {
      const node = CreateNodeResponse.parse(await admin('POST', '/v2/nodes', { name }))
      const engines = await Promise.all(served.map(async (pool) => ({ pool, port: await resolvePort({ port: 'auto', host: '127.0.0.1' }) })))
      for (const { pool, port } of engines) replicaEngineUrls.set(pool.id, [...(replicaEngineUrls.get(pool.id) ?? []), `http://127.0.0.1:${port}`])
      const poolConfigs = engines.map(({ pool, port }) => ({
        id: pool.id,
        engine: 'command',
        command: [process.execPath, FAKE_ENGINE, '--port', '{port}', '--slots', '{slots}', '--model-name', '{pool}'],
        args: [
          '--tokens',
          String(ENGINE_TOKEN_CAP),
          '--tokens-per-second',
          String(pool.tokensPerSecond),
          ...(pool.toolArguments === undefined ? [] : ['--tool-call', 'search', '--tool-arguments', pool.toolArguments, '--tool-fragment-chars', '4']),
        ],
        port,
        slots: pool.slots,
        health_interval_ms: 50,
        stop_grace_ms: ENGINE_STOP_GRACE_MS,
      }))
      const stateDir = path.join(dir, name)
      mkdirSync(stateDir)
      reaper.trackAgentStateDir(stateDir)
      const configFile = path.join(dir, `${name}.json`)
      const config = {
        control_plane_url: plane.url.toString(),
        node_token: node.token,
        state_dir: stateDir,
        shutdown_drain_ms: AGENT_DRAIN_MS,
        pools: poolConfigs,
      }
      writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 })

      say(`starting llorch-agent ${name} with ${served.map((p) => p.id).join(', ')}`)
      const agent = spawnLogged({
        name: 'llorch-agent',
        script: AGENT_CLI,
        args: ['run', '--config', configFile],
        logFile: path.join(dir, `${name}.log`),
        reaper,
        nodeArgs: agentInspectorPort !== null && agentPids.length === 0 ? [`--inspect=127.0.0.1:${agentInspectorPort}`] : [],
      })
      stops.push(() => stopLogged(agent, AGENT_DRAIN_MS + ENGINE_STOP_GRACE_MS + 3_000))
      agentPids.push(agent.pid)
      for (const pool of served) {
        await waitUntil(
          `a ready replica of ${pool.id} on ${name}`,
          async () => {
            const view = await admin('GET', `/v2/pools/${pool.id}`)
            return view !== null && PoolView.parse(view).replicas.some((r) => r.node_id === node.id && r.state === 'ready') ? true : null
          },
          { timeoutMs: READY_TIMEOUT_MS, watch: [agent, plane.watched] },
        )
      }
    }
    await startAgent('bench-node', pools)
    const most = Math.max(1, ...pools.map((p) => p.replicas ?? 1))
    for (let replica = 2; replica <= most; replica++)
      await startAgent(
        `bench-node-${replica}`,
        pools.filter((p) => (p.replicas ?? 1) >= replica),
      )
    const engineUrls = new Map([...replicaEngineUrls].flatMap(([pool, urls]): [string, string][] => (urls[0] === undefined ? [] : [[pool, urls[0]]])))
    const costs = async (): Promise<CostSnapshot> => {
      const [counts, stats] = await Promise.all([admin('GET', '/v2/debug/costs'), fetch(new URL('/stats', libsqlUrl)).then((r) => r.json())])
      const worker = DebugCosts.parse(counts)
      return {
        entryPoints: worker.entry_points,
        dispatches: worker.critical_path.dispatches,
        legsBeforeDispatch: worker.critical_path.legs_before_dispatch,
        storageWrites: worker.storage_writes,
        libsqlPipelines: LibsqlStats.parse(stats).pipelines,
      }
    }
    const workerdPids = descendantsNamed(process.pid, 'workerd')
    const cpuMs = (): ProcessCpu => ({ workerd: cpuMsOf(workerdPids), agents: cpuMsOf(agentPids) })
    const { inspectorPort, sourceMap } = plane
    return {
      apiUrl: new URL('/v1', plane.url).toString(),
      apiKey: key,
      engineUrls,
      replicaEngineUrls,
      costs,
      admin,
      cpuMs,
      poolCeiling: async (spec) => PoolCeilingResult.parse(await admin('POST', '/v2/debug/pool-ceiling', spec)),
      profile:
        inspectorPort === null || agentInspectorPort === null
          ? null
          : async () => ({ workerd: await profileWorkerd(inspectorPort, WORKER_NAME), agent: await profileNode(agentInspectorPort) }),
      workerSourceMap: sourceMap,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/** The control plane the agents connect to, and what the bench needs to reach and stop it. */
interface PlaneUnderBench {
  url: URL
  adminToken: string
  libsqlUrl: string
  /** The process whose death fails the wait for the agents. */
  watched: LoggedProcess
  /** workerd's inspector, when asked for. */
  inspectorPort: number | null
  sourceMap: string | null
  stop(): Promise<void>
}

/** As `npm start` runs it: the libSQL server as a process, the Worker in workerd through Miniflare. */
async function startMiniflarePlane(dir: string, reaper: Reaper, say: Say, inspect: boolean): Promise<PlaneUnderBench> {
  say('starting the local libSQL server')
  const libsql = spawnLogged({
    name: 'libsql-server',
    script: LIBSQL_CLI,
    args: ['--port', '0', '--file', path.join(dir, 'registry.db')],
    logFile: path.join(dir, 'libsql.log'),
    reaper,
  })
  const libsqlUrl = await waitUntil(
    'the libSQL server to listen',
    () => /"event":"libsql.listening","url":"([^"]+)"/.exec(readFileSync(libsql.logFile, 'utf8'))?.[1] ?? null,
    { timeoutMs: READY_TIMEOUT_MS, watch: [libsql] },
  )
  await applyMigrations({ url: libsqlUrl })

  say('bundling the Worker (wrangler deploy --dry-run)')
  const { bundlePath } = await buildWorker({ outDir: path.join(dir, 'bundle'), sourceMap: inspect })
  const inspectorPort = inspect ? await resolvePort({ port: 'auto', host: '127.0.0.1' }) : null
  const adminToken = `bench-admin-${crypto.randomUUID()}`
  // The Worker's console goes to a file: stdout carries only the bench's table and JSON.
  const workerLog = path.join(dir, 'worker.log')
  const controlPlane = await startControlPlane({
    bundlePath,
    persistPath: path.join(dir, 'workerd'),
    bindings: { LIBSQL_URL: libsqlUrl, ADMIN_TOKEN: adminToken },
    inspectorPort: inspectorPort ?? undefined,
    onLog: ({ level, message }) => {
      try {
        appendFileSync(workerLog, `${level} ${message}\n`)
      } catch {
        // the folder is gone: the bench is stopping
      }
    },
  })
  return {
    url: controlPlane.url,
    adminToken,
    libsqlUrl,
    watched: libsql,
    inspectorPort,
    sourceMap: inspect ? `${bundlePath}.map` : null,
    async stop() {
      await controlPlane.stop()
      await stopLogged(libsql, 5_000)
    },
  }
}

/** As the home profile runs it: `llorch serve` from this repository (workerd serve, no Miniflare). */
async function startServePlane(dir: string, reaper: Reaper, say: Say): Promise<PlaneUnderBench> {
  say('starting llorch serve (libSQL server and workerd serve)')
  const stateDir = path.join(dir, 'serve')
  const serve = spawnLogged({
    name: 'llorch serve',
    script: LLORCH_CLI,
    args: ['serve', '--state-dir', stateDir, '--port', '0'],
    logFile: path.join(dir, 'serve.log'),
    reaper,
  })
  const url = await waitUntil('llorch serve to listen', () => /control plane at (\S+) \(workerd serve/.exec(readFileSync(serve.logFile, 'utf8'))?.[1] ?? null, {
    timeoutMs: READY_TIMEOUT_MS,
    watch: [serve],
  })
  const paths = statePaths(stateDir)
  const running = readRunning(paths)
  if (!running) throw new Error(`llorch serve listens at ${url} but wrote no ${paths.running}`)
  return {
    url: new URL(url),
    adminToken: readFileSync(paths.adminToken, 'utf8').trim(),
    libsqlUrl: running.libsqlUrl,
    watched: serve,
    inspectorPort: null,
    sourceMap: null,
    stop: () => stopLogged(serve, 10_000),
  }
}
