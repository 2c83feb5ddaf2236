import type { Command } from 'commander'
import { FleetMetrics, NodeList, PoolList } from '../protocol/index.ts'
import type { PoolMetrics } from '../protocol/index.ts'
import { request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { integer } from './cli-context.ts'
import { table } from './render.ts'

const DEFAULT_INTERVAL_MS = 2_000
const CLEAR_SCREEN = '\x1b[H\x1b[2J'

const sum = (values: Partial<Record<string, number>>) => Object.values(values).reduce<number>((n, v) => n + (v ?? 0), 0)

function tokensPerSecond(now: PoolMetrics, before: FleetMetrics | null, at: FleetMetrics): string {
  const previous = before?.pools.find((p) => p.pool === now.pool)
  if (!before || !previous) return '-'
  const seconds = (Date.parse(at.collected_at) - Date.parse(before.collected_at)) / 1000
  return seconds > 0 ? ((now.completion_tokens - previous.completion_tokens) / seconds).toFixed(1) : '-'
}

function frame({
  url,
  fleet,
  before,
  pools,
  nodes,
}: {
  url: string
  fleet: FleetMetrics
  before: FleetMetrics | null
  pools: PoolList
  nodes: NodeList
}): string {
  const byId = new Map(nodes.nodes.map((n) => [n.id, n]))
  const states = new Map(pools.pools.map((p) => [p.id, p.state]))
  const poolRows = fleet.pools.map((p) => [
    p.pool,
    states.get(p.pool) ?? '?',
    p.queue_depth,
    `${p.slots_busy}/${p.slots}`,
    tokensPerSecond(p, before, fleet),
    p.tasks_ended.completed ?? 0,
    p.tasks_ended.failed ?? 0,
    sum(p.tasks_rejected),
    p.ttft_seconds.count > 0 ? `${Math.round((p.ttft_seconds.sum / p.ttft_seconds.count) * 1000)} ms` : '-',
  ])
  const nodeRows = fleet.nodes.map((n) => [
    n.node,
    byId.get(n.node)?.name ?? '-',
    // The status GET /v2/nodes shows, so top and nodes list agree (a node never connected is new).
    byId.get(n.node)?.status ?? (n.online ? 'online' : 'offline'),
    n.heartbeat_age_seconds === null ? '-' : `${n.heartbeat_age_seconds.toFixed(1)}s`,
    n.streaming_tasks,
    n.gpus.map((g) => `${g.index}:${(g.memory_used_mib / 1024).toFixed(1)}/${(g.memory_total_mib / 1024).toFixed(1)}G`).join(' ') || '-',
  ])
  return [
    `llorch top  ${url}  ${new Date(fleet.collected_at).toLocaleTimeString()}  (Ctrl-C quits)`,
    '',
    table(['POOL', 'STATE', 'QUEUE', 'SLOTS', 'TOK/S', 'DONE', 'FAILED', 'REJECTED', 'TTFT AVG'], poolRows),
    '',
    table(['NODE', 'NAME', 'STATUS', 'HEARTBEAT', 'TASKS', 'GPU MEM'], nodeRows),
    ...(fleet.unreachable.length > 0 ? ['', `unreachable: ${fleet.unreachable.map((u) => `${u.kind} ${u.id}`).join(', ')}`] : []),
  ].join('\n')
}

/** `llorch top`: pools and nodes, redrawn every interval, tokens/s from the change in completion tokens. */
export function topCommand(program: Command, ctx: CliContext): void {
  program
    .command('top')
    .description('live view of pools and nodes (from GET /v2/metrics)')
    .option('-i, --interval <ms>', 'between refreshes', integer('--interval'), DEFAULT_INTERVAL_MS)
    .option('-n, --iterations <n>', 'stop after this many refreshes (default: until Ctrl-C)', integer('--iterations'))
    .action(async (options: { interval: number; iterations?: number }) => {
      const connection = ctx.connection()
      const clear = process.stdout.isTTY && !ctx.json()
      let before: FleetMetrics | null = null
      for (let i = 0; options.iterations === undefined || i < options.iterations; i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.interval))
        const [fleet, pools, nodes] = await Promise.all([
          request(connection, { method: 'GET', path: '/v2/metrics', schema: FleetMetrics }),
          request(connection, { method: 'GET', path: '/v2/pools', schema: PoolList }),
          request(connection, { method: 'GET', path: '/v2/nodes', schema: NodeList }),
        ])
        if (ctx.json()) process.stdout.write(`${JSON.stringify(fleet.data)}\n`)
        else
          process.stdout.write(
            `${clear ? CLEAR_SCREEN : i > 0 ? '\n' : ''}${frame({ url: connection.url, fleet: fleet.data, before, pools: pools.data, nodes: nodes.data })}\n`,
          )
        before = fleet.data
      }
    })
}
