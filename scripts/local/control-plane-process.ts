import { spawn } from 'node:child_process'
import path from 'node:path'
import { z } from 'zod'
import { PROJECT_ROOT } from './project-root.ts'

/** How long the control plane's process may take to stop workerd and exit before it is sent SIGTERM. */
const CONTROL_PLANE_STOP_TIMEOUT_MS = 10_000

const CHILD = path.join(PROJECT_ROOT, 'scripts/local/control-plane-child.ts')

/** What `npm start` sends its control-plane process first: where and how to run the Worker. */
export const ControlPlaneStart = z.strictObject({
  type: z.literal('start'),
  bundlePath: z.string().min(1),
  persistPath: z.string().min(1),
  bindings: z.record(z.string(), z.string()),
  host: z.string().min(1),
  port: z.int().min(0).max(65_535),
  /** The Worker's console lines are appended here, one per line. */
  logFile: z.string().min(1),
})
export type ControlPlaneStart = z.infer<typeof ControlPlaneStart>

/** Sent by `npm start` once the streams are done: stop workerd and exit. */
export const ControlPlaneStop = z.strictObject({ type: z.literal('stop') })

/** The control-plane process's one answer to `start`. */
export const ControlPlaneAnswer = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready'), url: z.url() }),
  z.strictObject({ type: z.literal('failed'), message: z.string(), address_in_use: z.boolean() }),
])
export type ControlPlaneAnswer = z.infer<typeof ControlPlaneAnswer>

/** The port was taken: carries the code `listenOrExplain` recognises. */
export class AddressInUseError extends Error {
  readonly code = 'EADDRINUSE'
}

export interface ControlPlaneProcess {
  url: URL
  pid: number
  /** Stops workerd and waits for the process to exit. */
  stop(): Promise<void>
}

/**
 * Runs the control plane (Miniflare and its workerd) in a process of its own, in a process group
 * of its own. A terminal's Ctrl-C signals the whole foreground group at once, and both workerd and
 * Miniflare's exit hook end on SIGINT there and then, cutting every stream; out of that group,
 * the control plane keeps relaying until `npm start` has let the agent drain and calls `stop`.
 * It stops by itself when `npm start` is gone (its IPC channel closes).
 */
export async function startControlPlaneProcess(options: Omit<ControlPlaneStart, 'type'>): Promise<ControlPlaneProcess> {
  const child = spawn(process.execPath, [CHILD], { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const answer = await new Promise<ControlPlaneAnswer>((resolve, reject) => {
    child.once('message', (message) => {
      const parsed = ControlPlaneAnswer.safeParse(message)
      if (parsed.success) resolve(parsed.data)
      else reject(new Error(`the control plane's process answered ${JSON.stringify(message)}`))
    })
    child.once('error', reject)
    child.once('exit', (code, signal) => reject(new Error(`the control plane's process exited (${code ?? signal}) before it was ready`)))
    const start: ControlPlaneStart = { type: 'start', ...options }
    child.send(start)
  })
  if (answer.type === 'failed') {
    await exited
    throw answer.address_in_use ? new AddressInUseError(answer.message) : new Error(answer.message)
  }
  const running = () => child.exitCode === null && child.signalCode === null
  return {
    url: new URL(answer.url),
    pid: child.pid ?? 0,
    async stop() {
      if (!running()) return
      if (child.connected) child.send({ type: 'stop' } satisfies z.infer<typeof ControlPlaneStop>)
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), CONTROL_PLANE_STOP_TIMEOUT_MS).unref())
      // Miniflare's own SIGTERM hook disposes workerd before the process exits.
      if ((await Promise.race([exited.then(() => 'exited' as const), timeout])) === 'timeout' && running()) child.kill('SIGTERM')
      await exited
    },
  }
}
