/** Builds agents for tests, in-process or as the CLI, on a fresh state dir; stopped and killed after each test. */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { Agent } from '../../node-agent/agent.ts'
import type { AgentOptions } from '../../node-agent/agent.ts'
import { AgentConfig } from '../../node-agent/config/schema.ts'
import type { PoolConfig } from '../../node-agent/config/schema.ts'
import type { TaskEvent } from '../../protocol/index.ts'
import { AGENT_CLI, REPO_ROOT, fakeEngineCommand, fixturePath } from './processes.ts'
import type { useProcessCleanup } from './processes.ts'

export function testAgent(cleanup: ReturnType<typeof useProcessCleanup>, pools: PoolConfig[], options: Partial<AgentOptions> = {}): Agent {
  const config = AgentConfig.parse({ state_dir: cleanup.stateDir(), pools })
  const agent = new Agent({ config, random: () => 1, ...options })
  const track = () => {
    for (const pool of pools) for (const pid of agent.supervisor(pool.id).pids) cleanup.track(pid)
  }
  agent.onReplicaChange(track)
  cleanup.defer(async () => {
    track()
    agent.kill()
    await agent.stop({ deadlineMs: 0 })
  })
  return agent
}

export async function collectEvents(events: AsyncIterable<TaskEvent>, onEvent?: (event: TaskEvent) => void): Promise<TaskEvent[]> {
  const seen: TaskEvent[] = []
  for await (const event of events) {
    seen.push(event)
    onEvent?.(event)
  }
  return seen
}

/** The text of one choice across a task's `deltas` events: chat content or completions text. */
export function textOf(events: TaskEvent[], choice = 0): string {
  let text = ''
  for (const event of events) {
    if (event.kind !== 'deltas') continue
    for (const chunk of event.chunks) for (const c of chunk.choices) if (c.index === choice) text += c.delta?.content ?? c.text ?? ''
  }
  return text
}

/** The `seq` of each `deltas` event, in order. */
export const seqsOf = (events: TaskEvent[]) => events.flatMap((e) => (e.kind === 'deltas' ? [e.seq] : []))

export const chatBody = { model: 'fake-model', messages: [{ role: 'user' as const, content: 'say something' }] }

function execAgent(configFile: string, searchPath: string = fixturePath(), env: Record<string, string> = {}) {
  return execa(process.execPath, [AGENT_CLI, 'run', '--config', configFile], {
    reject: false,
    detached: true,
    stdin: 'ignore',
    cwd: REPO_ROOT,
    env: { PATH: searchPath, ...env },
    all: true,
  })
}

export interface CliAgent {
  pid: number
  process: ReturnType<typeof execAgent>
  /** stdout and stderr so far (JSON log lines). */
  output(): string
}

/** Runs `llorch-agent run --config FILE` as its own process (process group leader), tracked for cleanup. */
export function spawnAgentCli(
  cleanup: ReturnType<typeof useProcessCleanup>,
  configFile: string,
  { searchPath, env }: { searchPath?: string; env?: Record<string, string> } = {},
): CliAgent {
  const child = execAgent(configFile, searchPath, env)
  if (child.pid === undefined) throw new Error('could not start llorch-agent')
  cleanup.track(child.pid)
  let output = ''
  child.all.setEncoding('utf8')
  child.all.on('data', (chunk: string) => (output += chunk))
  return { pid: child.pid, process: child, output: () => output }
}

/** Writes a JSON config for a CLI agent with fake-engine pools and returns its path. */
export function writeAgentConfig(stateDir: string, pools: unknown[]): string {
  const file = path.join(stateDir, 'agent.json')
  writeFileSync(file, JSON.stringify({ state_dir: stateDir, log_level: 'debug', shutdown_drain_ms: 2_000, pools }, null, 2))
  return file
}

/** A fake-engine pool as it is written in a config file. */
export function fakePoolInput(id: string, fakeArgs: string[] = [], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    engine: 'command',
    command: fakeEngineCommand(fakeArgs),
    health_interval_ms: 20,
    stop_grace_ms: 2_000,
    liveness_interval_ms: 0,
    ...overrides,
  }
}
