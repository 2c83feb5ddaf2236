import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'

/** Where `llorch serve` keeps everything unless `--state-dir` or LLORCH_STATE_DIR says otherwise. */
export const DEFAULT_STATE_DIR = '/var/lib/llorch'

/** The files of a state dir; every path a command reads or writes is named here. */
export function statePaths(stateDir: string) {
  const root = path.resolve(stateDir)
  const run = path.join(root, 'run')
  return {
    root,
    /** The admin token (0600), written on first start. */
    adminToken: path.join(root, 'admin-token'),
    /** The credential the libSQL server requires and the Worker holds (0600). */
    libsqlToken: path.join(root, 'libsql-token'),
    registry: path.join(root, 'registry.db'),
    /** Durable Objects' SQLite files, one folder per class (workerd's `localDisk`). */
    objects: path.join(root, 'objects'),
    /** The local agent's node, created by llorch serve for itself. */
    localNode: path.join(root, 'local-node.json'),
    localNodeToken: path.join(root, 'local-node-token'),
    agentDir: path.join(root, 'agent'),
    agentConfig: path.join(root, 'agent', 'agent.json'),
    /** What the running llorch serve started, rewritten at each start. */
    run,
    workerdConfig: path.join(run, 'workerd.capnp'),
    running: path.join(run, 'serve.json'),
  }
}
export type StatePaths = ReturnType<typeof statePaths>

/** `run/serve.json`: where the running instance listens and which pids are its children. */
export const RunningServe = z.object({
  version: z.string(),
  pid: z.int(),
  url: z.url(),
  /** Plain HTTP on loopback: `url` itself, or with TLS the second socket this machine uses. */
  localUrl: z.url(),
  libsqlUrl: z.url(),
  workerdPid: z.int().nullable(),
  libsqlPid: z.int().nullable(),
})
export type RunningServe = z.infer<typeof RunningServe>

export function ensureStateDir(paths: StatePaths): void {
  mkdirSync(paths.root, { recursive: true, mode: 0o700 })
  chmodSync(paths.root, 0o700)
  mkdirSync(paths.objects, { recursive: true, mode: 0o700 })
  mkdirSync(paths.run, { recursive: true, mode: 0o700 })
}

/** A secret file's content without the trailing newline an editor may add; null when absent. */
export function readSecretFile(file: string): string | null {
  try {
    const value = readFileSync(file, 'utf8').trim()
    return value === '' ? null : value
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return null
    throw error
  }
}

/** Reads the secret in `file`, or creates it (0600, random) and says so with `created`. */
export function ensureSecretFile(file: string, prefix: string): { value: string; created: boolean } {
  const existing = readSecretFile(file)
  if (existing !== null) return { value: existing, created: false }
  const value = `${prefix}${randomBytes(24).toString('base64url')}`
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' })
  return { value, created: true }
}

export function writeRunning(paths: StatePaths, running: RunningServe): void {
  writeFileSync(paths.running, `${JSON.stringify(running, null, 2)}\n`, { mode: 0o600 })
}

export function readRunning(paths: StatePaths): RunningServe | null {
  try {
    return RunningServe.parse(JSON.parse(readFileSync(paths.running, 'utf8')))
  } catch {
    return null
  }
}

/** The running llorch serve of this state dir, if its process is still there. */
export function servedNow(paths: StatePaths): RunningServe | null {
  const running = readRunning(paths)
  if (!running) return null
  try {
    process.kill(running.pid, 0)
    return running
  } catch {
    return null
  }
}
