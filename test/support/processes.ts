/**
 * Helpers for tests that start real processes: wait for a condition under a ceiling, start the
 * fake engine, build pool configs with tiny delays, and kill whatever a test started even when
 * it failed.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import type { ResultPromise } from 'execa'
import { afterEach } from 'vitest'
import { readProcStat } from '../../node-agent/process/proc-stat.ts'
import { z } from 'zod'
import { PoolConfig } from '../../node-agent/config/schema.ts'
import type { PoolConfigInput } from '../../node-agent/config/schema.ts'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const FAKE_ENGINE = path.join(REPO_ROOT, 'test/fixtures/fake-engine.ts')
export const FIXTURE_BIN = path.join(REPO_ROOT, 'test/fixtures/bin')
export const AGENT_CLI = path.join(REPO_ROOT, 'node-agent/cli.ts')

/** PATH with the stand-in engines first and the pinned Node next (the stand-ins exec `node`). */
export function fixturePath(): string {
  return [FIXTURE_BIN, path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter)
}

/**
 * Polls `check` until it returns something truthy and returns that; fails loudly after
 * `timeoutMs` with `message` and the last value seen.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 20, message = 'condition' }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await check()
    if (last) return last
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}; last value: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const state = readProcStat(pid)?.fields[0]
  return state !== undefined && state !== 'Z' && state !== 'X'
}

/** Pids recorded in a state dir's engine PID files. */
export function enginePidsIn(stateDir: string): number[] {
  try {
    return readdirSync(path.join(stateDir, 'engines'))
      .filter((name) => name.endsWith('.pid'))
      .map((name) => Number(name.split('.').at(-2)))
      .filter((pid) => Number.isInteger(pid))
  } catch {
    return []
  }
}

function killGroupAndPid(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/**
 * Registers an `afterEach` that kills every pid and process group tracked during a test, every
 * engine named in a tracked state dir, and removes those dirs. Call at the top of a test file.
 */
export function useProcessCleanup() {
  const pids = new Set<number>()
  const dirs = new Set<string>()
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const fn of cleanups.splice(0)) await Promise.resolve(fn()).catch(() => {})
    for (const dir of dirs) for (const pid of enginePidsIn(dir)) pids.add(pid)
    for (const pid of pids) killGroupAndPid(pid)
    pids.clear()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    dirs.clear()
  })
  return {
    track(pid: number | null | undefined): void {
      if (pid) pids.add(pid)
    },
    /** A fresh temporary state dir, removed after the test. */
    stateDir(): string {
      const dir = mkdtempSync(path.join(tmpdir(), 'llorch-agent-test-'))
      dirs.add(dir)
      return dir
    },
    /** Runs `fn` after the test, before processes are killed (e.g. `agent.stop()`). */
    defer(fn: () => unknown): void {
      cleanups.push(fn)
    },
  }
}

export interface FakeEngineHandle {
  pid: number
  port: number
  baseUrl: string
  process: ResultPromise
  stats(): Promise<FakeEngineStats>
}

/** What the fake engine reports at `GET /fake/stats`. */
export const FakeEngineStats = z.object({
  pid: z.int(),
  /** The sha256 of the file given as `--model-file`. */
  model_sha256: z.string().nullable(),
  loaded: z.boolean(),
  healthy: z.boolean(),
  requests: z.int(),
  completed: z.int(),
  aborted: z.int(),
  active: z.int(),
  queued: z.int(),
  rejected: z.int(),
  tokens: z.int(),
  max_active: z.int(),
  preloads: z.array(z.object({ model: z.unknown(), keep_alive: z.unknown() })),
  last_body: z.unknown(),
  users: z.record(z.string(), z.int()),
})
export type FakeEngineStats = z.infer<typeof FakeEngineStats>

export async function fakeEngineStats(baseUrl: string): Promise<FakeEngineStats> {
  const response = await fetch(`${baseUrl}/fake/stats`)
  return FakeEngineStats.parse(await response.json())
}

/** Starts the fake engine on a free port and waits for its `listening` line. */
export async function startFakeEngine(args: string[], track: (pid: number) => void): Promise<FakeEngineHandle> {
  const child = execa(process.execPath, [FAKE_ENGINE, '--port', '0', ...args], { reject: false, detached: true, stdin: 'ignore' })
  if (child.pid === undefined) throw new Error('could not start the fake engine')
  track(child.pid)
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk
      const match = /\{"event":"listening","port":(\d+)/.exec(buffer)
      if (match) resolve(Number(match[1]))
    })
    void child.then((result) => reject(new Error(`fake engine exited before listening: ${String(result.stderr)}`)))
  })
  const baseUrl = `http://127.0.0.1:${port}`
  return { pid: child.pid, port, baseUrl, process: child, stats: () => fakeEngineStats(baseUrl) }
}

/** argv for a `command` pool running the fake engine. */
export function fakeEngineCommand(args: string[] = []): string[] {
  return [process.execPath, FAKE_ENGINE, '--port', '{port}', ...args]
}

/** A `command` pool running the fake engine, with delays small enough for tests. */
export function fakePool(overrides: Partial<PoolConfigInput> & { fakeArgs?: string[] } = {}): PoolConfig {
  const { fakeArgs = [], ...rest } = overrides
  return PoolConfig.parse({
    id: 'fake-model',
    engine: 'command',
    command: fakeEngineCommand(fakeArgs),
    slots: 2,
    health_interval_ms: 20,
    stop_grace_ms: 2_000,
    start_timeout_ms: 10_000,
    liveness_interval_ms: 0,
    restart: { initial_delay_ms: 5, max_delay_ms: 1_000, max_crashes: 3, crash_window_ms: 60_000 },
    ...rest,
  })
}
