import { rmSync, writeFileSync } from 'node:fs'
import { migrate } from 'drizzle-orm/libsql/migrator'
import { z } from 'zod'
import { createRegistry } from '../db/client.ts'
import { jsonLineLog } from '../db/libsql-server/index.ts'
import { resolvePort } from '../node-agent/process/port.ts'
import { LLORCH_VERSION } from '../protocol/index.ts'
import { serveLayout } from './layout.ts'
import { portFree } from './port-free.ts'
import { ensureLocalNode, writeLocalAgentConfig } from './local-agent.ts'
import { ensureSecretFile, ensureStateDir, servedNow, statePaths, writeRunning, type RunningServe } from './state-dir.ts'
import { SupervisedProcess } from './supervised-process.ts'
import { SECRET_ENV, workerdConfig } from './workerd-config.ts'

/** The libSQL server is reached only from this machine, whatever `--host` says. */
export const REGISTRY_HOST = '127.0.0.1'
/** How long each child may take to answer after it is started. */
export const READY_TIMEOUT_MS = 60_000
const READY_POLL_MS = 100
/** The agent drains its engines on SIGTERM (shutdown_drain_ms and stop_grace_ms); it gets this long. */
export const AGENT_STOP_GRACE_MS = 90_000

export const ServeOptions = z
  .object({
    stateDir: z.string().min(1, 'expected a folder'),
    host: z.string().min(1, 'expected an address to bind'),
    port: z.coerce.number({ error: 'expected an integer 0–65535' }).int().min(0).max(65_535),
    agentConfig: z.string().min(1).optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
  })
  .refine((o) => (o.tlsCert === undefined) === (o.tlsKey === undefined), { message: 'give --tls-cert and --tls-key together', path: ['tlsKey'] })
export type ServeOptions = z.infer<typeof ServeOptions>

const say = (line: string) => process.stdout.write(`llorch serve: ${line}\n`)

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${READY_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS))
  }
}

/**
 * `llorch serve`: the registry (libSQL server on loopback, with a credential, migrated), the
 * control plane (the deploy bundle in `workerd serve`, Durable Objects on disk) and optionally
 * the home box's own agent, each restarted with backoff when it dies. SIGTERM or SIGINT stops
 * the agent (which stops its engines), then workerd, then the registry.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const paths = statePaths(options.stateDir)
  const layout = serveLayout()
  ensureStateDir(paths)
  const earlier = servedNow(paths)
  if (earlier && earlier.pid !== process.pid) throw new Error(`${paths.root} is served already by pid ${earlier.pid} (${earlier.url})`)

  // workerd would only log the bind failure and be restarted forever; say it once instead.
  if (options.port !== 0 && !(await portFree(options.host, options.port)))
    throw new Error(`${options.host}:${options.port} is already in use (another llorch serve or npm start?); give --port another one (0 picks a free one)`)
  const adminToken = ensureSecretFile(paths.adminToken, 'lla.')
  if (adminToken.created) say(`wrote the admin token to ${paths.adminToken} (mode 0600); it is not printed`)
  const libsqlToken = ensureSecretFile(paths.libsqlToken, 'lls.').value

  const children: SupervisedProcess[] = []
  let running: RunningServe | null = null
  const pidOf = (name: string) => children.find((c) => c.command.name === name)?.pid ?? null
  // Backup pauses workerd by the pid recorded here, so a restarted child is recorded again.
  const record = () => {
    if (running) writeRunning(paths, { ...running, workerdPid: pidOf('workerd'), libsqlPid: pidOf('libsql') })
  }
  let stopping: Promise<void> | null = null
  const stopAll = () => {
    stopping ??= (async () => {
      for (const child of children.toReversed()) await child.stop(child.command.name === 'agent' ? AGENT_STOP_GRACE_MS : undefined)
      rmSync(paths.running, { force: true })
    })()
    return stopping
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      jsonLineLog('serve.stopping', { signal })
      void stopAll().then(() => process.exit(0))
    })
  }

  try {
    const libsqlPort = await resolvePort({ port: 'auto', host: REGISTRY_HOST })
    const libsqlUrl = `http://${REGISTRY_HOST}:${libsqlPort}`
    const libsql = new SupervisedProcess(
      {
        name: 'libsql',
        file: layout.node,
        args: [layout.libsqlServer, '--file', paths.registry, '--host', REGISTRY_HOST, '--port', String(libsqlPort), '--auth-token-file', paths.libsqlToken],
        env: {},
        onStart: record,
      },
      jsonLineLog,
    )
    children.push(libsql)
    libsql.start()
    await waitUntil('the libSQL server', async () => (await fetch(`${libsqlUrl}/health`)).ok)
    await migrate(createRegistry({ url: libsqlUrl, authToken: libsqlToken }), { migrationsFolder: layout.migrationsFolder })
    say(`registry ${paths.registry} on ${libsqlUrl} (loopback, credential required), migrated`)

    const { bundleFile, manifest } = await layout.worker(`${paths.run}/worker`)
    const port = await resolvePort({ port: options.port === 0 ? 'auto' : options.port, host: options.host })
    const tls =
      options.tlsCert && options.tlsKey
        ? { certFile: options.tlsCert, keyFile: options.tlsKey, loopbackPort: await resolvePort({ port: 'auto', host: '127.0.0.1' }) }
        : undefined
    writeFileSync(
      paths.workerdConfig,
      workerdConfig({ manifest, configFile: paths.workerdConfig, bundleFile, objectsDir: paths.objects, host: options.host, port, tls, libsqlUrl }),
      { mode: 0o600 },
    )
    const workerd = new SupervisedProcess(
      {
        name: 'workerd',
        file: layout.workerd,
        args: ['serve', paths.workerdConfig, 'config'],
        env: { [SECRET_ENV.adminToken]: adminToken.value, [SECRET_ENV.libsqlAuthToken]: libsqlToken },
        onStart: record,
      },
      jsonLineLog,
    )
    children.push(workerd)
    workerd.start()
    const dialHost = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host
    const url = `${tls ? 'https' : 'http'}://${dialHost.includes(':') ? `[${dialHost}]` : dialHost}:${port}`
    const localUrl = tls ? `http://127.0.0.1:${tls.loopbackPort}` : url
    await waitUntil('workerd', async () => (await fetch(`${localUrl}/health`)).ok)
    running = { version: LLORCH_VERSION, pid: process.pid, url, localUrl, libsqlUrl, workerdPid: null, libsqlPid: null }
    record()
    say(`control plane at ${url} (workerd serve, objects in ${paths.objects}, admin token in ${paths.adminToken})`)

    if (options.agentConfig) {
      const admin = (method: string, route: string, body?: unknown) =>
        fetch(`${localUrl}${route}`, {
          method,
          headers: { Authorization: `Bearer ${adminToken.value}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        })
      const nodeId = await ensureLocalNode(paths, admin)
      const config = writeLocalAgentConfig(paths, options.agentConfig, localUrl)
      const agent = new SupervisedProcess({ name: 'agent', file: layout.node, args: [layout.agent, 'run', '--config', config], env: {} }, jsonLineLog)
      children.push(agent)
      agent.start()
      say(`local agent for node ${nodeId} (config ${config})`)
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}
