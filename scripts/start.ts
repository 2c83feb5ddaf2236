/**
 * `npm start`: the whole system on this machine. The local libSQL server (registry in
 * .llorch/registry.db, migrated), the control plane in workerd with persisted Durable Objects,
 * a local node with its agent serving a demo pool on the fake engine, and an API key. Prints
 * the URL, the key and examples; Ctrl-C stops everything.
 */
import { execa } from 'execa'
import { writeFileSync } from 'node:fs'
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
const AGENT_STOP_TIMEOUT_MS = 15_000

const StartEnv = z.object({
  LLORCH_PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  LLORCH_LIBSQL_PORT: z.coerce.number().int().min(0).max(65_535).default(8880),
  LLORCH_HOST: z.string().min(1).default('127.0.0.1'),
})

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

say('llorch: starting the local libSQL server')
const libsql = await startLibsqlServer({ file: path.join(STATE_DIR, 'registry.db'), port: LLORCH_LIBSQL_PORT, host: LLORCH_HOST })
await applyMigrations({ url: libsql.url })
say(`llorch: registry at ${libsql.url} (.llorch/registry.db), migrated`)

say('llorch: bundling the Worker (wrangler deploy --dry-run)')
const { bundlePath } = await buildWorker()
const controlPlane = await startControlPlane({
  bundlePath,
  persistPath: path.join(STATE_DIR, 'workerd'),
  bindings: { LIBSQL_URL: libsql.url, ADMIN_TOKEN: secrets.adminToken },
  host: LLORCH_HOST,
  port: LLORCH_PORT,
})
const url = controlPlane.url.toString().replace(/\/$/, '')
say(`llorch: control plane at ${url} (workerd, state in .llorch/workerd)`)

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
let stopping = false
const agent = execa(process.execPath, [path.join(PROJECT_ROOT, 'node-agent/cli.ts'), 'run', '--config', agentConfigPath], {
  stdout: { file: path.join(STATE_DIR, 'agent.log') },
  stderr: { file: path.join(STATE_DIR, 'agent.log') },
  reject: false,
})
let agentExited = false
void agent.then((result) => {
  agentExited = true
  if (!stopping) say(`llorch: the local agent exited (${result.exitCode ?? result.signal}); see .llorch/agent.log`)
})
say(`llorch: local agent started (pid ${agent.pid}, node ${secrets.nodeId}, log .llorch/agent.log)`)

writeLocalState({ url, libsqlUrl: libsql.url, adminToken: secrets.adminToken, nodeId: secrets.nodeId, apiKey: secrets.apiKey })

const readyBy = Date.now() + DEMO_READY_TIMEOUT_MS
let ready = false
while (!ready && Date.now() < readyBy && !agentExited) {
  const pool = await admin('GET', `/v2/pools/${DEMO_POOL}`)
  ready = pool.status === 200 && z.object({ state: z.string() }).parse(await pool.json()).state === 'ready'
  if (!ready) await new Promise((resolve) => setTimeout(resolve, 200))
}
say(ready ? `llorch: pool "${DEMO_POOL}" is ready (fake engine, a demo)` : `llorch: pool "${DEMO_POOL}" is not ready yet; see .llorch/agent.log`)

say(`
  API        ${url}/v1   (OpenAI-compatible)
  API key    ${secrets.apiKey}
  Admin      Authorization: Bearer ${secrets.adminToken}
  State      .llorch/local.json

  Stream tokens:
    curl -N ${url}/v1/chat/completions \\
      -H "Authorization: Bearer ${secrets.apiKey}" -H "Content-Type: application/json" \\
      -d '{"model":"${DEMO_POOL}","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  With the openai package:
    const openai = new OpenAI({ baseURL: '${url}/v1', apiKey: '${secrets.apiKey}' })
    for await (const c of await openai.chat.completions.create({ model: '${DEMO_POOL}', stream: true,
      messages: [{ role: 'user', content: 'Hello' }] })) process.stdout.write(c.choices[0]?.delta.content ?? '')

  A real engine instead of the demo: edit .llorch/agent.json (or copy node-agent/examples/llamacpp.yaml),
  set "engine": "llamacpp", "binary": "/path/to/llama-server", "model": "/path/to/model.gguf", then
  restart with npm start. Ctrl-C stops everything.
`)

async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  say(`llorch: ${signal}, stopping the agent, the control plane and the registry`)
  agent.kill('SIGTERM')
  const stopped = await Promise.race([agent.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), AGENT_STOP_TIMEOUT_MS))])
  if (!stopped) agent.kill('SIGKILL')
  await controlPlane.stop()
  await libsql.close()
  say('llorch: stopped')
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
