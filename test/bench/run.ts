/**
 * `npm run bench`: the same streaming chat completions sent straight to a fake engine (direct)
 * and through the llorch API (relay: Worker → PoolObject → NodeObject → WebSocket → agent →
 * that same engine process), side by side. Prints a table with relay/direct ratios, then one JSON
 * object (`--json`: only the JSON). Everything it starts is stopped by pid, also on Ctrl-C.
 *
 *   npm run bench -- --requests 100 --concurrency 8 --tokens 256 --paced-rate 50
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runAffinity } from './affinity-run.ts'
import { BenchUsageError, USAGE, parseBenchOptions } from './bench-options.ts'
import type { AffinityResult } from './affinity-run.ts'
import type { BenchOptions } from './bench-options.ts'
import { startBenchStack } from './bench-stack.ts'
import type { PoolCeilingResult } from '../../protocol/index.ts'
import { dollarsPerMillion } from './cloudflare-prices.ts'
import { selfTimeByGroup } from './cpu-profile.ts'
import type { ProfileGroup, Profiling } from './cpu-profile.ts'
import type { BenchStack, CostSnapshot, ProcessCpu } from './bench-stack.ts'
import { runLoad } from './load-runner.ts'
import { Reaper } from './reaper.ts'
import { renderTable } from './report.ts'
import type { BenchReport, ScenarioResult, TaskCost } from './report.ts'
import { planBench } from './scenarios.ts'
import type { BenchPool, Scenario } from './scenarios.ts'
import { compare, summarize } from './stream-stats.ts'
import type { BenchPath, StreamTarget } from './stream-request.ts'

const say = (line: string) => process.stderr.write(`bench: ${line}\n`)
/** A little longer than the pool's usage flush interval. */
const USAGE_SETTLE_MS = 2_500

function targetOf(stack: BenchStack, pool: BenchPool, path: BenchPath): StreamTarget {
  const tool = pool.toolArguments === undefined ? {} : { toolArguments: pool.toolArguments }
  if (path === 'relay') return { path, url: `${stack.apiUrl}/chat/completions`, model: pool.id, headers: { Authorization: `Bearer ${stack.apiKey}` }, ...tool }
  const engineUrl = stack.engineUrls.get(pool.id)
  if (engineUrl === undefined) throw new Error(`no engine URL for pool ${pool.id}`)
  return { path, url: `${engineUrl}/v1/chat/completions`, model: pool.id, headers: {}, ...tool }
}

/** Connections, JIT and every cache on both paths warmed up; a path that cannot serve fails the bench here. */
async function warmUp(stack: BenchStack, pool: BenchPool, { concurrency, tokens }: BenchOptions): Promise<void> {
  const requests = Math.max(10, 2 * concurrency)
  const warmTokens = pool.tokensPerSecond > 0 ? 1 : tokens
  for (const path of ['direct', 'relay'] as const) {
    const { samples } = await runLoad({ target: targetOf(stack, pool, path), requests, concurrency, tokens: warmTokens })
    const failed = samples.find((s) => s.error !== null)
    if (failed) throw new Error(`warm-up of ${pool.id} over ${path} failed: ${failed.error}`)
  }
}

/** The scenario whose relay run is profiled: short requests, so the profile shows the cost per request. */
const PROFILED_SCENARIO = 'one-token'

type Profiled = NonNullable<BenchReport['profile']>

async function runScenario(stack: BenchStack, scenario: Scenario, profileDir: string | null): Promise<ScenarioResult & { profile?: Profiled }> {
  const measure = async (path: BenchPath) => {
    say(`${scenario.name}: ${path}, ${scenario.requests} requests, ${scenario.concurrency} at a time`)
    return summarize(
      await runLoad({ target: targetOf(stack, scenario.pool, path), requests: scenario.requests, concurrency: scenario.concurrency, tokens: scenario.tokens }),
    )
  }
  const direct = await measure('direct')
  const before = await stack.costs()
  const profiling = profileDir !== null && stack.profile !== null && scenario.name === PROFILED_SCENARIO ? await stack.profile() : null
  const cpuBefore = stack.cpuMs()
  const relay = await measure('relay')
  const cpuAfter = stack.cpuMs()
  const profile = profiling && profileDir !== null ? await saveProfiles(stack, profiling, profileDir, scenario.requests) : undefined
  // Let the batched usage of the last tasks reach the registry, so it counts in this scenario.
  await new Promise((resolve) => setTimeout(resolve, USAGE_SETTLE_MS))
  const after = await stack.costs()
  const cost = costPerTask(before, after, scenario.requests, { workerd: cpuAfter.workerd - cpuBefore.workerd, agents: cpuAfter.agents - cpuBefore.agents })
  return {
    name: scenario.name,
    description: scenario.description,
    pool: scenario.pool.id,
    engineTokensPerSecond: scenario.pool.tokensPerSecond,
    requests: scenario.requests,
    concurrency: scenario.concurrency,
    tokens: scenario.tokens,
    direct,
    relay,
    ratio: compare(direct, relay),
    relayCostPerTask: cost,
    relayDollarsPerMillion: dollarsPerMillion(cost),
    ...(profile ? { profile } : {}),
  }
}

/** Writes both profiles (and the Worker's source map, for DevTools) into `dir`; answers their self time per task by module. */
async function saveProfiles(stack: BenchStack, profiling: { workerd: Profiling; agent: Profiling }, dir: string, tasks: number): Promise<Profiled> {
  const [workerd, agent] = await Promise.all([profiling.workerd.stop(), profiling.agent.stop()])
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, `workerd-${PROFILED_SCENARIO}.cpuprofile`), JSON.stringify(workerd))
  writeFileSync(path.join(dir, `agent-${PROFILED_SCENARIO}.cpuprofile`), JSON.stringify(agent))
  if (stack.workerSourceMap !== null) copyFileSync(stack.workerSourceMap, path.join(dir, 'worker.js.map'))
  const perTask = (groups: ProfileGroup[]) => groups.map(({ group, ms }) => ({ group, ms: Number((ms / tasks).toFixed(3)) }))
  return {
    scenario: PROFILED_SCENARIO,
    workerdMsPerTask: perTask(selfTimeByGroup(workerd, stack.workerSourceMap ?? undefined)),
    agentMsPerTask: perTask(selfTimeByGroup(agent)),
  }
}

function costPerTask(before: CostSnapshot, after: CostSnapshot, tasks: number, cpu: ProcessCpu): TaskCost {
  const per = (n: number) => Number((n / tasks).toFixed(3))
  const byEntryPoint = Object.fromEntries(
    Object.entries(after.entryPoints)
      .map(([name, count]): [string, number] => [name, per(count - (before.entryPoints[name] ?? 0))])
      .filter(([, count]) => count > 0),
  )
  const calls = Object.values(byEntryPoint).reduce((sum, n) => sum + n, 0)
  return {
    durableObjectCalls: Number(calls.toFixed(3)),
    agentFrames: byEntryPoint['NodeObject.webSocketMessage'] ?? 0,
    byEntryPoint,
    legsBeforeDispatch: Number(((after.legsBeforeDispatch - before.legsBeforeDispatch) / Math.max(1, after.dispatches - before.dispatches)).toFixed(2)),
    storageWrites: per(after.storageWrites - before.storageWrites),
    libsqlRoundTrips: per(after.libsqlPipelines - before.libsqlPipelines),
    workerdCpuMs: per(cpu.workerd),
    agentCpuMs: per(cpu.agents),
  }
}

async function main(options: BenchOptions, reaper: Reaper): Promise<number> {
  const startedAt = new Date().toISOString()
  const loadBefore = os.loadavg()[0] ?? 0
  const plan = planBench(options)
  const stack = await startBenchStack({ pools: plan.pools, reaper, say, serve: options.serve, profile: options.profile !== null })
  const scenarios: ScenarioResult[] = []
  let profile: Profiled | undefined
  let affinity: AffinityResult | undefined
  let poolCeiling: PoolCeilingResult | undefined
  try {
    for (const pool of plan.pools) {
      say(`warming up ${pool.id} (direct and relay)`)
      await warmUp(stack, pool, options)
    }
    for (const scenario of plan.scenarios) {
      const { profile: profiled, ...result } = await runScenario(stack, scenario, options.profile)
      scenarios.push(result)
      profile ??= profiled
    }
    say(`affinity: relay, ${plan.affinity.sessions} sessions of ${plan.affinity.turns} requests over ${plan.affinity.pool.replicas ?? 1} replicas`)
    affinity = await runAffinity(stack, plan.affinity)
    say(`pool ceiling: ${plan.poolCeiling.tasks} admit → release cycles against one PoolObject`)
    poolCeiling = await stack.poolCeiling(plan.poolCeiling)
  } finally {
    say('stopping the agent, its engines, workerd and the libSQL server')
    await stack.stop()
  }
  if (!affinity || !poolCeiling) throw new Error('the affinity run or the pool ceiling did not finish')
  const { json: jsonOnly, ...shown } = options
  const report: BenchReport = {
    bench: 'llorch relay vs direct',
    startedAt,
    node: process.version,
    cpus: os.availableParallelism(),
    loadAverage: { before: loadBefore, after: os.loadavg()[0] ?? 0 },
    options: shown,
    scenarios,
    affinity,
    poolCeiling,
    ...(profile ? { profile } : {}),
  }
  if (!jsonOnly) process.stdout.write(`\n${renderTable(report)}\n\n`)
  process.stdout.write(`${JSON.stringify(report)}\n`)
  return scenarios.some((s) => s.direct.errors + s.relay.errors > 0) || affinity.relay.errors > 0 ? 1 : 0
}

let options: BenchOptions | null
try {
  options = parseBenchOptions(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof BenchUsageError)) throw error
  process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`)
  process.exit(2)
}
if (options === null) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}

// Registered before Miniflare's own hooks, so these run first; they must be synchronous, since
// Miniflare exits the process right after its SIGINT/SIGTERM listener.
const reaper = new Reaper()
process.once('exit', () => reaper.reapNow())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: killing everything the bench started`)
    reaper.reapNow()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

try {
  process.exitCode = await main(options, reaper)
} catch (error) {
  say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
}
