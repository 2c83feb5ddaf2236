/**
 * `npm start`: the whole system on this machine. The local libSQL server (registry in
 * .llorch/registry.db, migrated), the control plane in workerd with persisted Durable Objects,
 * a local node with its agent serving a demo pool on the fake engine, and an API key. Prints
 * the URL, the key and examples; Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, openSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { startLibsqlServer } from '../db/libsql-server/index.ts'
import { CreateApiKeyResponse, CreateNodeResponse, NodeView, describeIssues } from '../protocol/index.ts'
import { PROJECT_ROOT, buildWorker } from './local/build-worker.ts'
import { startControlPlane } from './local/control-plane.ts'
import { STATE_DIR, readLocalSecrets, writeLocalSecrets, writeLocalState } from './local/local-state.ts'
import { applyMigrations } from './local/migrate.ts'

/** The pool the local agent serves with the fake engine. */
export const DEMO_POOL = 'demo-model'
/** How long the demo engine may take to become ready before start-up gives up waiting. */
const DEMO_READY_TIMEOUT_MS = 60_000

const StartEnv = z.object({
  LLORCH_PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  LLORCH_LIBSQL_PORT: z.coerce.number().int().min(0).max(65_535).default(8880),
  LLORCH_HOST: z.string().min(1).default('127.0.0.1'),
})

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

const secrets = readLocalSecrets() ?? { adminToken: `local-admin-${crypto.randomUUID()}` }
writeLocalSecrets(secrets)

// Miniflare's own exit hook ends this process on SIGINT/SIGTERM right after these listeners run
// (it disposes workerd), so the shutdown done here is what must not wait: the agent gets
// SIGTERM and drains and stops its engines by itself; SQLite's WAL keeps the registry safe.
let stopping = false
let stopAgent: (() => void) | null = null
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    say(`llorch: ${signal}: stopping the control plane and the registry; the agent drains its engines (${shown('agent.log')})`)
    stopAgent?.()
    // Before the control plane is up there is no Miniflare hook to end the process.
    setImmediate(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}

say('llorch: starting the local libSQL server')
const libsql = await startLibsqlServer({ file: path.join(STATE_DIR, 'registry.db'), port: LLORCH_LIBSQL_PORT, host: LLORCH_HOST })
await applyMigrations({ url: libsql.url })
say(`llorch: registry at ${libsql.url} (${shown('registry.db')}), migrated`)

say('llorch: bundling the Worker (wrangler deploy --dry-run)')
const { bundlePath } = await buildWorker()
// The Worker logs one JSON line per event; they go to a file so this terminal keeps the banner.
const controlPlaneLog = createWriteStream(path.join(STATE_DIR, 'control-plane.log'), { flags: 'a' })
const controlPlane = await startControlPlane({
  bundlePath,
  persistPath: path.join(STATE_DIR, 'workerd'),
  bindings: { LIBSQL_URL: libsql.url, ADMIN_TOKEN: secrets.adminToken },
  host: LLORCH_HOST,
  port: LLORCH_PORT,
  onLog: ({ message }) => controlPlaneLog.write(`${message}\n`),
})
const url = controlPlane.url.toString().replace(/\/$/, '')
say(`llorch: control plane at ${url} (workerd, state in ${shown('workerd')}, events in ${shown('control-plane.log')})`)

async function admin(method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${secrets.adminToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
}

// The node token and API key are shown once by the API, so they are kept in .llorch/secrets.json.
const knownNode = secrets.nodeId ? await admin('GET', `/v2/nodes/${secrets.nodeId}`) : null
if (!knownNode || knownNode.status !== 200 || NodeView.parse(await knownNode.json()).status === 'revoked' || !secrets.nodeToken) {
  const created = CreateNodeResponse.parse(await (await admin('POST', '/v2/nodes', { name: `local-${crypto.randomUUID().slice(0, 8)}`, labels: { local: 'true' } })).json())
  secrets.nodeId = created.id
  secrets.nodeToken = created.token
}
if (!secrets.apiKey || (await fetch(`${url}/v1/models`, { headers: { Authorization: `Bearer ${secrets.apiKey}` } })).status !== 200) {
  secrets.apiKey = CreateApiKeyResponse.parse(await (await admin('POST', '/v2/api-keys', { name: 'local', scopes: ['inference'] })).json()).key
}
writeLocalSecrets(secrets)

const agentConfigPath = path.join(STATE_DIR, 'agent.json')
writeFileSync(
  agentConfigPath,
  `${JSON.stringify(
    {
      control_plane_url: url,
      node_token: secrets.nodeToken,
      state_dir: path.join(STATE_DIR, 'agent'),
      pools: [
        {
          id: DEMO_POOL,
          engine: 'command',
          command: [process.execPath, path.join(PROJECT_ROOT, 'test/fixtures/fake-engine.ts'), '--port', '{port}', '--slots', '{slots}', '--model-name', '{pool}'],
          args: ['--load-ms', '500', '--tokens', '48', '--tokens-per-second', '40', '--engine-version', 'demo'],
          slots: 4,
          start_timeout_ms: 30_000,
        },
      ],
    },
    null,
    2,
  )}\n`,
  { mode: 0o600 },
)
// The agent gets the log file's descriptor itself (no pipe through this process) and its own
// process group (a terminal's Ctrl-C reaches only this process, which sends one SIGTERM), so it
// drains and logs to the end even after this process has exited.
const agentLog = openSync(path.join(STATE_DIR, 'agent.log'), 'a')
const agent = spawn(process.execPath, [path.join(PROJECT_ROOT, 'node-agent/cli.ts'), 'run', '--config', agentConfigPath], {
  stdio: ['ignore', agentLog, agentLog],
  detached: true,
})
stopAgent = () => agent.kill('SIGTERM')
let agentExited = false
agent.on('exit', (code, signal) => {
  agentExited = true
  if (!stopping) say(`llorch: the local agent exited (${code ?? signal}); see ${shown('agent.log')}`)
})
say(`llorch: local agent started (pid ${agent.pid}, node ${secrets.nodeId}, log ${shown('agent.log')})`)

writeLocalState({ url, libsqlUrl: libsql.url, adminToken: secrets.adminToken, nodeId: secrets.nodeId, apiKey: secrets.apiKey })

const readyBy = Date.now() + DEMO_READY_TIMEOUT_MS
let ready = false
while (!ready && Date.now() < readyBy && !agentExited) {
  const pool = await admin('GET', `/v2/pools/${DEMO_POOL}`)
  ready = pool.status === 200 && z.object({ state: z.string() }).parse(await pool.json()).state === 'ready'
  if (!ready) await new Promise((resolve) => setTimeout(resolve, 200))
}
say(ready ? `llorch: pool "${DEMO_POOL}" is ready (fake engine, a demo)` : `llorch: pool "${DEMO_POOL}" is not ready yet; see ${shown('agent.log')}`)

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
      -d '{"model":"${DEMO_POOL}","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  With the openai package:
    const openai = new OpenAI({ baseURL: '${url}/v1', apiKey: '${secrets.apiKey}' })
    for await (const c of await openai.chat.completions.create({ model: '${DEMO_POOL}', stream: true,
      messages: [{ role: 'user', content: 'Hello' }] })) process.stdout.write(c.choices[0]?.delta.content ?? '')

  A real engine instead of the demo: edit ${shown('agent.json')} (or copy node-agent/examples/llamacpp.yaml),
  set "engine": "llamacpp", "binary": "/path/to/llama-server", "model": "/path/to/model.gguf", then
  restart with npm start. Ctrl-C stops everything.
`)


