import type { AffinityResult } from './affinity-run.ts'
import type { BenchOptions } from './bench-options.ts'
import type { PoolCeilingResult } from '../../protocol/index.ts'
import type { DollarsPerMillion } from './cloudflare-prices.ts'
import type { ProfileGroup } from './cpu-profile.ts'
import type { PathRatios, PathStats } from './stream-stats.ts'

export interface ScenarioResult {
  name: string
  description: string
  pool: string
  engineTokensPerSecond: number
  requests: number
  concurrency: number
  tokens: number
  direct: PathStats
  relay: PathStats
  /** relay ÷ direct: above 1 is slower for times, below 1 is slower for rates. */
  ratio: PathRatios
  /** What each relayed task cost the control plane, averaged over the relay run (background heartbeats included). */
  relayCostPerTask: TaskCost
  /** The same, in US dollars per million relayed requests at Cloudflare's prices (`cloudflare-prices.ts`). */
  relayDollarsPerMillion: DollarsPerMillion
}

export interface TaskCost {
  /** Durable Object entry points (RPC methods, fetch, alarms, WebSocket messages), all objects. */
  durableObjectCalls: number
  /** Of those, frames from the agent (`NodeObject.webSocketMessage`): the token path. */
  agentFrames: number
  byEntryPoint: Record<string, number>
  /** One-way messages in sequence before a dispatch reached the agent's NodeObject, per dispatch (`critical_path` of `/v2/debug/costs`). */
  legsBeforeDispatch: number
  storageWrites: number
  libsqlRoundTrips: number
  /** CPU time of workerd (the Worker and every object) during the relay run ÷ its tasks, from /proc; 0 off Linux. */
  workerdCpuMs: number
  /** The same for the agent processes (not their engines). */
  agentCpuMs: number
}

export interface BenchReport {
  bench: 'llorch relay vs direct'
  startedAt: string
  node: string
  cpus: number
  /** The box may be shared: 1-minute load average when the bench started and when it ended. */
  loadAverage: { before: number; after: number }
  options: Omit<BenchOptions, 'json'>
  scenarios: ScenarioResult[]
  /** Sessions over a pool of several replicas, relay only. */
  affinity: AffinityResult
  /** Admit-and-release cycles one PoolObject sustains (`POST /v2/debug/pool-ceiling`). */
  poolCeiling: PoolCeilingResult
  /** With `--profile`: the self time of workerd and of the agent per relayed task of `scenario`, by source module. */
  profile?: { scenario: string; workerdMsPerTask: ProfileGroup[]; agentMsPerTask: ProfileGroup[] }
}

const HEADER = ['SCENARIO', 'PATH', 'REQS', 'CONC', 'TOKENS', 'TTFT P50 ms', 'TTFT P95 ms', 'TOK/S/STREAM', 'AGG TOK/S', 'REQ/S', 'WALL s', 'ERRORS']
const AFFINITY_HEADER = ['POOL', 'REPLICAS', 'SESSIONS', 'TURNS', 'CONC', 'TTFT P50 ms', 'REQ/S', 'ERRORS', 'HIT RATE', 'BY CHANCE']
const COST_HEADER = [
  'SCENARIO',
  'DO CALLS',
  'AGENT FRAMES',
  'OTHER DO CALLS',
  'HOPS TO DISPATCH',
  'DO WRITES',
  'LIBSQL ROUND TRIPS',
  'WORKERD CPU ms',
  'AGENT CPU ms',
]
/** Columns 0 and 1 are text, the rest numbers (right-aligned). */
const TEXT_COLUMNS = 2

const num = (n: number | undefined, digits = 1) =>
  n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const times = (r: number | null) => (r === null ? '-' : `×${r.toFixed(2)}`)

function pathRow(s: ScenarioResult, path: 'direct' | 'relay'): string[] {
  const p = s[path]
  return [
    path === 'direct' ? s.name : '',
    path,
    String(p.requests),
    String(s.concurrency),
    String(s.tokens),
    num(p.ttftMs?.p50, 2),
    num(p.ttftMs?.p95, 2),
    num(p.streamTokensPerSecond?.p50, 0),
    num(p.aggregateTokensPerSecond, 0),
    num(p.requestsPerSecond, 0),
    num(p.wallMs / 1000, 2),
    String(p.errors),
  ]
}

function ratioRow({ ratio }: ScenarioResult): string[] {
  return [
    '',
    'relay/direct',
    '',
    '',
    '',
    times(ratio.ttftP50),
    times(ratio.ttftP95),
    times(ratio.streamTokensPerSecond),
    times(ratio.aggregateTokensPerSecond),
    times(ratio.requestsPerSecond),
    times(ratio.wall),
    '',
  ]
}

function aligned(rows: string[][], textColumns: number): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => (i < textColumns ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '))
}

function costRow({ name, relayCostPerTask: cost }: ScenarioResult): string[] {
  return [
    name,
    num(cost.durableObjectCalls, 2),
    num(cost.agentFrames, 2),
    num(cost.durableObjectCalls - cost.agentFrames, 2),
    num(cost.legsBeforeDispatch, 2),
    num(cost.storageWrites, 2),
    num(cost.libsqlRoundTrips, 3),
    num(cost.workerdCpuMs, 2),
    num(cost.agentCpuMs, 2),
  ]
}

const DOLLARS_HEADER = ['SCENARIO', 'WORKER REQUESTS', 'WORKER CPU', 'DO REQUESTS', 'DO ROW WRITES', 'TOTAL']

function dollarsRow({ name, relayDollarsPerMillion: usd }: ScenarioResult): string[] {
  const dollars = (n: number) => `$${num(n, 3)}`
  return [name, dollars(usd.workerRequests), dollars(usd.workerCpu), dollars(usd.durableObjectRequests), dollars(usd.storageWrites), dollars(usd.total)]
}

/** Issue 21's targets, each read from this run's scenarios (a missing scenario shows as "-"). */
function targetLines(scenarios: ScenarioResult[]): string[] {
  const named = (name: string) => scenarios.find((s) => s.name === name)
  const ms = (n: number | null | undefined) => (n === null || n === undefined ? '-' : `${num(n, 2)} ms`)
  const sequential = named('sequential')
  const oneToken = named('one-token')
  const paced = named('paced')
  const cpu = oneToken ? oneToken.relayCostPerTask.workerdCpuMs + oneToken.relayCostPerTask.agentCpuMs : undefined
  return [
    `added TTFT p50, one stream at a time (sequential): ${ms(sequential?.ratio.addedTtftMsP50)} (target ≤ 3 ms)`,
    `CPU per request, one-token: workerd + agent ${ms(cpu)} (target ≤ 1.5 ms)`,
    `16 × 64-token streams (burst-64): ${times(named('burst-64')?.ratio.aggregateTokensPerSecond ?? null)} of direct tokens/s (target ≥ ×0.5)`,
    `8 × 2048-token streams (long): ${times(named('long')?.ratio.aggregateTokensPerSecond ?? null)} of direct tokens/s (target ≥ ×0.7)`,
    `paced: ${times(paced?.ratio.aggregateTokensPerSecond ?? null)} of direct tokens/s (target ≥ ×0.98), added TTFT p50 ${ms(paced?.ratio.addedTtftMsP50)} and added last token p50 ${ms(paced?.ratio.addedLastTokenMsP50)} (targets ≤ 3 ms)`,
  ]
}

function ceilingLine({ tasks, concurrency, nodes, slots, errors, wall_ms, tasks_per_second }: PoolCeilingResult): string {
  return `${num(tasks_per_second, 0)} tasks/s: ${tasks} admit → release cycles, ${concurrency} at a time, on ${nodes} fake replicas of ${slots} slots, in ${num(wall_ms / 1000, 2)} s (${errors} refused)`
}

function affinityRow(a: AffinityResult): string[] {
  const percent = (r: number) => `${(r * 100).toFixed(1)}%`
  return [
    a.pool,
    String(a.replicas),
    String(a.sessions),
    String(a.turns),
    String(a.concurrency),
    num(a.relay.ttftMs?.p50, 2),
    num(a.relay.requestsPerSecond, 0),
    String(a.relay.errors),
    percent(a.hitRate),
    percent(a.chanceRate),
  ]
}

/** Modules shown of each profile; the rest is summed in one line. */
const PROFILE_ROWS = 12

function profileLines({ scenario, workerdMsPerTask, agentMsPerTask }: NonNullable<BenchReport['profile']>): string[] {
  const block = (what: string, groups: ProfileGroup[]) => {
    const total = groups.reduce((sum, g) => sum + g.ms, 0)
    const rest = groups.slice(PROFILE_ROWS).reduce((sum, g) => sum + g.ms, 0)
    const shown = [...groups.slice(0, PROFILE_ROWS), ...(rest > 0 ? [{ group: '(the rest)', ms: rest }] : [])]
    return [
      `${what} CPU PROFILE, ${scenario} relay run: ${num(total, 3)} ms per task, by module (self time, profiler on)`,
      ...aligned([['MODULE', 'ms/task'], ...shown.map((g) => [g.group, num(g.ms, 3)])], 1),
    ]
  }
  return [...block('WORKERD', workerdMsPerTask), '', ...block('AGENT', agentMsPerTask)]
}

/** One block per scenario: direct, relay, and relay/direct for each metric; then the cost per relayed task and the affinity run; first errors below. */
export function renderTable({ scenarios, affinity, poolCeiling, node, cpus, loadAverage, profile }: BenchReport): string {
  const lines = aligned([HEADER, ...scenarios.flatMap((s) => [pathRow(s, 'direct'), pathRow(s, 'relay'), ratioRow(s)])], TEXT_COLUMNS)
  // A blank line before each scenario but the first (rows: header, then three per scenario).
  const body = lines.map((l, i) => (i > 1 && i % 3 === 1 ? `\n${l}` : l))
  const costs = aligned([COST_HEADER, ...scenarios.map(costRow)], 1)
  const affinityLines = aligned([AFFINITY_HEADER, affinityRow(affinity)], 1)
  const notes = [
    ...scenarios.map((s) => `${s.name}: ${s.description}`),
    'TTFT: request sent → first content. TOK/S/STREAM: p50 of tokens ÷ (request sent → [DONE]). AGG TOK/S: all tokens ÷ wall time. REQ/S: requests ÷ wall time.',
    'COST: Durable Object entry points, storage writes, libSQL round trips and the CPU time of workerd and the agent during the relay run ÷ its requests (heartbeats and batched usage writes included; CPU from /proc, 10 ms ticks).',
    `AFFINITY: ${affinity.sessions} sessions (X-Session-Id) of ${affinity.turns} requests each, one at a time per session, ${affinity.concurrency} sessions at once, ${affinity.tokens} tokens; HIT RATE: requests after a session's first served by the replica of its previous request, as the engines counted them.`,
    `Node ${node}, ${cpus} CPUs, load average ${loadAverage.before.toFixed(2)} at start, ${loadAverage.after.toFixed(2)} at the end`,
  ]
  const errors = scenarios.flatMap((s) =>
    (['direct', 'relay'] as const).flatMap((path) =>
      s[path].firstError === null ? [] : [`${s.name}/${path}: ${s[path].errors} errors, first: ${s[path].firstError}`],
    ),
  )
  if (affinity.relay.firstError !== null) errors.push(`affinity/relay: ${affinity.relay.errors} errors, first: ${affinity.relay.firstError}`)
  return [
    ...body,
    '',
    'COST PER RELAYED TASK',
    ...costs,
    '',
    'COST PER MILLION RELAYED REQUESTS, USD at Cloudflare Workers Paid prices (allowances and Durable Object duration left out)',
    ...aligned([DOLLARS_HEADER, ...scenarios.map(dollarsRow)], 1),
    '',
    'TARGETS (issue 21), relay against direct in this run',
    ...targetLines(scenarios),
    '',
    'POOL CEILING (one PoolObject, no agents)',
    ceilingLine(poolCeiling),
    '',
    'SESSION AFFINITY (relay only)',
    ...affinityLines,
    '',
    ...(profile ? [...profileLines(profile), ''] : []),
    ...notes,
    ...(errors.length > 0 ? ['', ...errors] : []),
  ].join('\n')
}
