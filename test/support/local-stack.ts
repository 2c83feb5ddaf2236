import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, inject } from 'vitest'
import { startLibsqlServer } from '../../db/libsql-server/index.ts'
import type { LibsqlServer } from '../../db/libsql-server/index.ts'
import { startControlPlane } from '../../scripts/local/control-plane.ts'
import type { LocalControlPlane } from '../../scripts/local/control-plane.ts'
import { applyMigrations } from '../../scripts/local/migrate.ts'
import { BATCH_COMPLETION_WINDOW_MS } from '../../protocol/index.ts'
import { startStallProxy } from './stall-proxy.ts'
import type { StallProxy } from './stall-proxy.ts'

export const TEST_ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef'

export interface Stack {
  url: URL
  dir: string
  libsql: LibsqlServer
  /** Between the control plane and libSQL, to stall the registry; absent unless asked for. */
  registryProxy: StallProxy | null
  controlPlane: LocalControlPlane
  /** Calls the control plane with the admin token, JSON in and out. */
  admin(method: string, path: string, body?: unknown): Promise<Response>
  /** Stops and starts the control plane on the same port with the same persisted state. */
  restartControlPlane(): Promise<void>
  stop(): Promise<void>
}

export interface StackOptions {
  heartbeatIntervalMs?: number
  /** The Worker's BATCH_COMPLETION_WINDOW_MS: how long after its creation a batch expires. */
  batchCompletionWindowMs?: number
  stallableRegistry?: boolean
}

/**
 * The whole control plane as it runs in production, on one machine: the local libSQL server,
 * migrated, and the bundled Worker in workerd with persisted Durable Objects.
 */
export async function startStack({
  heartbeatIntervalMs = 200,
  batchCompletionWindowMs = BATCH_COMPLETION_WINDOW_MS,
  stallableRegistry = false,
}: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'llorch-e2e-'))
  const libsql = await startLibsqlServer({ file: path.join(dir, 'registry.db') })
  await applyMigrations({ url: libsql.url })
  const registryProxy = stallableRegistry ? await startStallProxy(new URL(libsql.url)) : null
  const bindings = {
    LIBSQL_URL: registryProxy?.url ?? libsql.url,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    HEARTBEAT_INTERVAL_MS: String(heartbeatIntervalMs),
    BATCH_COMPLETION_WINDOW_MS: String(batchCompletionWindowMs),
  }
  const bundlePath = inject('workerBundlePath')
  const persistPath = path.join(dir, 'workerd')
  let controlPlane = await startControlPlane({ bundlePath, persistPath, bindings })
  const port = Number(controlPlane.url.port)

  const stack: Stack = {
    url: controlPlane.url,
    dir,
    libsql,
    registryProxy,
    get controlPlane() {
      return controlPlane
    },
    admin(method, requestPath, body) {
      return fetch(new URL(requestPath, controlPlane.url), {
        method,
        headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })
    },
    async restartControlPlane() {
      await controlPlane.stop()
      controlPlane = await startControlPlane({ bundlePath, persistPath, bindings, port })
    },
    async stop() {
      await controlPlane.stop().catch(() => {})
      await registryProxy?.close().catch(() => {})
      await libsql.close().catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return stack
}

/**
 * A fresh stack for each test of the file, stopped after it; call at the top of a `describe`,
 * after `useProcessCleanup()` so the stack stops before the test's processes are killed.
 */
export function useStack(options: Omit<StackOptions, 'stallableRegistry'> = {}): () => Stack {
  let stack: Stack | undefined
  beforeEach(async () => {
    stack = await startStack(options)
  })
  afterEach(async () => {
    await stack?.stop()
    stack = undefined
  })
  return () => {
    if (!stack) throw new Error('useStack: the stack is only there inside a test')
    return stack
  }
}
