/**
 * `npm start`: the whole system on this machine. The local libSQL server (registry in
 * .llorch/registry.db, migrated), the control plane in workerd with persisted Durable Objects,
 * a local node with its agent serving a demo pool on the fake engine, and an API key. Prints
 * the URL, the key and examples; Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { startLibsqlServer } from '../db/libsql-server/index.ts'
import type { LibsqlServer } from '../db/libsql-server/index.ts'
import { checkLocalFiles } from '../node-agent/checks/local-files.ts'
import { failed, renderProblem } from '../node-agent/checks/finding.ts'
import { CreateApiKeyResponse, CreateNodeResponse, NodeView, PoolList, describeIssues } from '../protocol/index.ts'
import { newLocalAdminToken } from './local/admin-token.ts'
import { DEMO_POOL, prepareAgentConfig } from './local/agent-config.ts'
import { bundleUpToDate } from './local/bundle-cache.ts'
import { DEFAULT_BUNDLE_PATH, buildWorker } from './local/build-worker.ts'
import { PROJECT_ROOT } from './local/project-root.ts'
import { startControlPlaneProcess } from './local/control-plane-process.ts'
import type { ControlPlaneProcess } from './local/control-plane-process.ts'
import { STATE_DIR, readLocalSecrets, writeLocalSecrets, writeLocalState } from './local/local-state.ts'
import { applyMigrations } from './local/migrate.ts'
import { listenOrExplain } from './local/port-in-use.ts'
import { waitForPools } from './local/wait-for-pools.ts'

/** How long the agent's eager pools may take to become ready before start-up stops waiting. */
const POOLS_READY_TIMEOUT_MS = 60_000
/** Beyond the agent's drain deadline, what its engines may take to stop (SIGTERM, SIGKILL after their grace). */
const AGENT_EXIT_MARGIN_MS = 15_000
/** After the agent exits, how long the control plane may take to relay the last events of the streams it ran. */
const STREAMS_SETTLE_TIMEOUT_MS = 5_000
/** Between two looks at the busy slots while the streams settle. */
const STREAMS_POLL_INTERVAL_MS = 100
/**
 * npm forwards a terminal's Ctrl-C to its script, which got it from the terminal already (where
 * the shell execs node): a second signal this soon is the same Ctrl-C, not a second one.
 */
const REPEATED_SIGNAL_WINDOW_MS = 1_000
/** A stream's last bytes ([DONE], the chunked end) leave workerd after its slot is free; workerd is killed, not drained. */
const STREAM_FLUSH_GRACE_MS = 300

const StartEnv = z.object({
  LLORCH_PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  LLORCH_LIBSQL_PORT: z.coerce.number().int().min(0).max(65_535).default(8880),
  LLORCH_HOST: z.string().min(1).default('127.0.0.1'),
})

/** The registry binds loopback whatever LLORCH_HOST says; LLORCH_HOST moves the API alone. */
const REGISTRY_HOST = '127.0.0.1'

/** A path under the state dir as the operator would type it from the project root. */
const shown = (name: string) => path.relative(PROJECT_ROOT, path.join(STATE_DIR, name)) || name

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

const env = StartEnv.safeParse(process.env)
if (!env.success) {
  console.error(`npm start: ${describeIssues(env.error.issues)}`)
  process.exit(2)
}
const { LLORCH_PORT, LLORCH_LIBSQL_PORT, LLORCH_HOST } = env.data

const secrets = readLocalSecrets() ?? { adminToken: newLocalAdminToken() }
// The registry holds every key's hash: only this machine reaches it, and only with this token.
secrets.libsqlAuthToken ??= `local-libsql-${crypto.randomUUID()}`
const libsqlAuthToken = secrets.libsqlAuthToken
writeLocalSecrets(secrets)

// Ctrl-C stops in order, so a running stream ends whole: the agent drains first (its in-flight
// tasks get its drain deadline and are relayed to their clients), then the control plane, which
// runs in its own process group and so sees no Ctrl-C of its own, then the registry. A second
// Ctrl-C skips the waiting.
let stopping = false
let stoppingSince = 0
let libsql: LibsqlServer | null = null
let controlPlane: ControlPlaneProcess | null = null
let agentRun: { exited: Promise<void>; running: () => boolean; stop: () => void; drainMs: number; waitMs: number } | null = null
let url = ''

function until<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())])
}

/** Once the agent is gone: until no slot is busy, the control plane is still relaying a stream's last events. */
async function streamsSettled(): Promise<void> {
  const deadline = Date.now() + STREAMS_SETTLE_TIMEOUT_MS
  while (Date.now() < deadline) {
    const busy = await fetch(`${url}/v2/pools`, { headers: { Authorization: `Bearer ${secrets.adminToken}` } })
      .then(async (response) => PoolList.parse(await response.json()).pools.some((p) => (p.slots_busy ?? 0) > 0))
      .catch(() => false)
    if (!busy) break
    await new Promise((resolve) => setTimeout(resolve, STREAMS_POLL_INTERVAL_MS))
  }
  await new Promise((resolve) => setTimeout(resolve, STREAM_FLUSH_GRACE_MS))
}

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  const agent = agentRun
  if (agent?.running()) {
    say(
      `llorch: ${signal}: stopping: the agent drains first (running streams have up to ${agent.drainMs} ms to finish; ${shown('agent.log')}), then the control plane and the registry. Ctrl-C again stops at once`,
    )
    agent.stop()
    if ((await until(agent.exited, agent.waitMs)) === 'timeout') say(`llorch: the agent is still draining; it goes on by itself (${shown('agent.log')})`)
  } else say(`llorch: ${signal}: stopping the control plane and the registry`)
  if (controlPlane) {
    if (agent) await streamsSettled()
    await controlPlane.stop()
  }
  await libsql?.close()
  say('llorch: stopped')
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    const code = signal === 'SIGINT' ? 130 : 143
    if (stopping) {
      if (Date.now() - stoppingSince < REPEATED_SIGNAL_WINDOW_MS) return
      // The control plane's process sees this process's IPC channel close and stops workerd.
      say(`llorch: ${signal} again: stopping now`)
      process.exit(code)
    }
    stopping = true
    stoppingSince = Date.now()
    shutdown(signal).then(
      () => process.exit(code),
      (error: unknown) => {
        console.error(`npm start: stopping failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exit(1)
      },
    )
  })
}

say('llorch: starting the local libSQL server')
const registry = await listenOrExplain(
  () => startLibsqlServer({ file: path.join(STATE_DIR, 'registry.db'), port: LLORCH_LIBSQL_PORT, host: REGISTRY_HOST, authToken: libsqlAuthToken }),
  {
    host: REGISTRY_HOST,
    port: LLORCH_LIBSQL_PORT,
    variable: 'LLORCH_LIBSQL_PORT',
  },
)
libsql = registry
await applyMigrations({ url: registry.url, authToken: libsqlAuthToken })
say(`llorch: registry at ${registry.url} (${shown('registry.db')}), migrated`)

const bundlePath = DEFAULT_BUNDLE_PATH
if (bundleUpToDate(bundlePath, PROJECT_ROOT)) say(`llorch: the Worker bundle is up to date with the sources (${path.relative(PROJECT_ROOT, bundlePath)})`)
else {
  say('llorch: bundling the Worker (wrangler deploy --dry-run)')
  await buildWorker()
}
const started = await listenOrExplain(
  () =>
    startControlPlaneProcess({
      bundlePath,
      persistPath: path.join(STATE_DIR, 'workerd'),
      bindings: { LIBSQL_URL: registry.url, LIBSQL_AUTH_TOKEN: libsqlAuthToken, ADMIN_TOKEN: secrets.adminToken },
      host: LLORCH_HOST,
      port: LLORCH_PORT,
      // The Worker logs one JSON line per event; they go to a file so this terminal keeps the banner.
      logFile: path.join(STATE_DIR, 'control-plane.log'),
    }),
  { host: LLORCH_HOST, port: LLORCH_PORT, variable: 'LLORCH_PORT' },
)
controlPlane = started
url = started.url.toString().replace(/\/$/, '')
say(`llorch: control plane at ${url} (workerd under pid ${started.pid}, state in ${shown('workerd')}, events in ${shown('control-plane.log')})`)

async function admin(method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${secrets.adminToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
}

// The node token and API key are shown once by the API, so they are kept in .llorch/secrets.json.
const knownNode = secrets.nodeId ? await admin('GET', `/v2/nodes/${secrets.nodeId}`) : null
let nodeToken = secrets.nodeToken
if (!knownNode || knownNode.status !== 200 || NodeView.parse(await knownNode.json()).status === 'revoked' || !nodeToken) {
  const created = CreateNodeResponse.parse(
    await (await admin('POST', '/v2/nodes', { name: `local-${crypto.randomUUID().slice(0, 8)}`, labels: { local: 'true' } })).json(),
  )
  secrets.nodeId = created.id
  nodeToken = secrets.nodeToken = created.token
}
if (!secrets.apiKey || (await fetch(`${url}/v1/models`, { headers: { Authorization: `Bearer ${secrets.apiKey}` } })).status !== 200) {
  secrets.apiKey = CreateApiKeyResponse.parse(await (await admin('POST', '/v2/api-keys', { name: 'local', scopes: ['inference'] })).json()).key
}
writeLocalSecrets(secrets)

const agentConfigPath = path.join(STATE_DIR, 'agent.json')
const prepared = prepareAgentConfig(STATE_DIR, { controlPlaneUrl: url, nodeToken })
if (!prepared.ok) {
  console.error(`npm start: ${prepared.message}`)
  process.exit(1)
}
const agentConfig = prepared.config
// What `llorch-agent validate` checks (engine programs, model files, token file, state dir),
// before anything is spawned: a missing binary is one line here, not a crash loop in agent.log.
const problems = failed(await checkLocalFiles(agentConfig))
if (problems.length > 0) {
  console.error(
    [
      ...problems.map((p) => `npm start: ${renderProblem(agentConfigPath, p)}`),
      `npm start: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${shown('agent.json')}; the agent was not started`,
    ].join('\n'),
  )
  process.exit(1)
}
if (prepared.created) say(`llorch: wrote ${shown('agent.json')} with the demo pool "${DEMO_POOL}"; edit it freely, npm start keeps it`)
else
  say(
    `llorch: using your ${shown('agent.json')} (${agentConfig.pools.map((p) => p.id).join(', ')})${prepared.changed.length > 0 ? `; updated ${prepared.changed.join(', ')} for this stack` : ''}`,
  )
// A Ctrl-C during start-up: the shutdown under way ends this process; no agent is started for it.
if (stopping) await new Promise<never>(() => {})
// The agent gets the log file's descriptor itself (no pipe through this process) and its own
// process group (a terminal's Ctrl-C reaches only this process, which sends one SIGTERM), so it
// drains and logs to the end even after this process has exited.
const agentLog = openSync(path.join(STATE_DIR, 'agent.log'), 'a')
const agent = spawn(process.execPath, [path.join(PROJECT_ROOT, 'node-agent/cli.ts'), 'run', '--config', agentConfigPath], {
  stdio: ['ignore', agentLog, agentLog],
  detached: true,
})
let agentExited = false
const agentGone = new Promise<void>((resolve) =>
  agent.on('exit', (code, signal) => {
    agentExited = true
    if (!stopping) say(`llorch: the local agent exited (${code ?? signal}); see ${shown('agent.log')}`)
    resolve()
  }),
)
const longestStopGraceMs = Math.max(0, ...agentConfig.pools.map((p) => p.stop_grace_ms))
agentRun = {
  exited: agentGone,
  running: () => !agentExited,
  stop: () => agent.kill('SIGTERM'),
  drainMs: agentConfig.shutdown_drain_ms,
  waitMs: agentConfig.shutdown_drain_ms + longestStopGraceMs + AGENT_EXIT_MARGIN_MS,
}
say(`llorch: local agent started (pid ${agent.pid}, node ${secrets.nodeId}, log ${shown('agent.log')})`)

writeLocalState({ url, libsqlUrl: registry.url, adminToken: secrets.adminToken, nodeId: secrets.nodeId, apiKey: secrets.apiKey })

// Pools the agent starts with; an on-demand one is started by its first request.
await waitForPools({
  ids: agentConfig.pools.filter((p) => p.preload === 'eager').map((p) => p.id),
  admin,
  deadline: Date.now() + POOLS_READY_TIMEOUT_MS,
  stopped: () => agentExited,
  say,
  agentLog: shown('agent.log'),
})
const model = agentConfig.pools[0]?.id ?? DEMO_POOL

say(`
  API        ${url}/v1   (OpenAI-compatible)
  API key    ${secrets.apiKey}
  Admin      Authorization: Bearer ${secrets.adminToken}
  State      ${shown('local.json')}
  Dashboard  ${url}/   (paste the admin token into the page)
  Metrics    ${url}/metrics   (Prometheus, admin token)
  Admin CLI  npx llorch pools list   (reads ${shown('local.json')}; also nodes, keys, usage, top)
  Logs       ${shown('control-plane.log')} and ${shown('agent.log')}, one JSON line per event (tail -f)

  Stream tokens:
    curl -N ${url}/v1/chat/completions \\
      -H "Authorization: Bearer ${secrets.apiKey}" -H "Content-Type: application/json" \\
      -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  With the openai package:
    const openai = new OpenAI({ baseURL: '${url}/v1', apiKey: '${secrets.apiKey}' })
    for await (const c of await openai.chat.completions.create({ model: '${model}', stream: true,
      messages: [{ role: 'user', content: 'Hello' }] })) process.stdout.write(c.choices[0]?.delta.content ?? '')

  A real engine: add a pool to ${shown('agent.json')} (see node-agent/examples/llamacpp.yaml), e.g.
  {"id": "my-model", "engine": "llamacpp", "binary": "/path/to/llama-server", "model": "/path/to/model.gguf"},
  and run npm start again: it keeps the file and updates only control_plane_url and node_token_file.
  Ctrl-C stops everything, letting running streams finish first; a second Ctrl-C stops at once.
`)
