import { Miniflare, convertV4MiniflareOptions } from 'miniflare'
import path from 'node:path'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { PROJECT_ROOT } from './project-root.ts'

export interface ControlPlaneOptions {
  bundlePath: string
  /** Durable Object storage lives here across restarts; omit for an in-memory instance. */
  persistPath?: string | undefined
  /** Settings the Worker reads from `env`, secrets included (ADMIN_TOKEN, LIBSQL_AUTH_TOKEN). */
  bindings: Record<string, string>
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** workerd's V8 inspector listens here (the bench profiles the Worker through it); off when absent. */
  inspectorPort?: number | undefined
  /** Receives what the Worker writes to its console; without it Miniflare prints it to stdout and stderr. */
  onLog?: ((log: { level: string; message: string }) => void) | undefined
}

export interface LocalControlPlane {
  url: URL
  miniflare: Miniflare
  stop(): Promise<void>
}

/**
 * Runs the bundled Worker in workerd through Miniflare, with the Durable Objects and vars that
 * wrangler.toml declares, so the local system and the tests run what `wrangler deploy` ships.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<LocalControlPlane> {
  // Module rules only matter to wrangler's bundler; the bundle is one ESM file already.
  const { modulesRules: _bundlerOnly, ...workerOptions } = unstable_getMiniflareWorkerOptions(path.join(PROJECT_ROOT, 'wrangler.toml')).workerOptions
  const miniflare = new Miniflare(
    convertV4MiniflareOptions({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      cf: false,
      ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
      ...(options.onLog ? { handleStructuredLogs: options.onLog } : {}),
      ...(options.persistPath ? { resourcePersistencePath: options.persistPath } : {}),
      workers: [
        {
          ...workerOptions,
          name: 'llorch',
          modules: true,
          scriptPath: options.bundlePath,
          // Module names are relative to this root; the bundle may live outside the project.
          modulesRoot: path.dirname(options.bundlePath),
          bindings: { ...(workerOptions.bindings ?? {}), ...options.bindings },
        },
      ],
    }),
  )
  const url = await miniflare.ready
  return {
    url,
    miniflare,
    stop: () => miniflare.dispose(),
  }
}
