import type { Command } from 'commander'
import { PoolCommand, PoolCommandResult, PoolList, PoolView, Priority } from '../protocol/index.ts'
import { CliError, EXIT_USAGE, request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { integer } from './cli-context.ts'
import { REPLICA_HEAD, replicaRows, table } from './render.ts'

const poolPath = (id: string) => `/v2/pools/${id.split('/').map(encodeURIComponent).join('/')}`

function poolTable(pools: readonly PoolView[]): string {
  return table(
    ['POOL', 'ENGINE', 'STATE', 'QUEUE', 'SLOTS', 'REPLICAS'],
    pools.map((p) => [p.id, p.engine, p.state, p.queue_depth ?? '?', `${p.slots_busy ?? '?'}/${p.slots_total}`, p.replicas.map((r) => `${r.node_id}:${r.state}`).join(' ') || '-']),
  )
}

function priority(value: string): Priority {
  const parsed = Priority.safeParse(value)
  if (!parsed.success) throw new CliError(`--default-priority ${value}: expected one of ${Priority.options.join(', ')}`, EXIT_USAGE)
  return parsed.data
}

/** `llorch pools list|show|set|drain|preload|reload`. */
export function poolCommands(program: Command, ctx: CliContext): void {
  const pools = program.command('pools').description('pools (models): state, policy, preload / drain / reload')

  pools
    .command('list')
    .description('every pool with state, queue depth and slots')
    .action(async () => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: '/v2/pools', schema: PoolList })
      ctx.print(data, () => (data.pools.length === 0 ? 'no pools; a pool appears when an agent that serves it connects' : poolTable(data.pools)))
    })

  pools
    .command('show <id>')
    .description('one pool: policy and replicas with their reasons')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: poolPath(id), schema: PoolView })
      const policy = Object.entries(data.policy).map(([k, v]) => `${k}=${v ?? '-'}`).join('  ')
      ctx.print(data, () => `${poolTable([data])}\npolicy: ${policy}\n\n${table(REPLICA_HEAD, replicaRows(data.replicas))}`)
    })

  pools
    .command('set <id>')
    .description('change the pool policy')
    .option('--queue-capacity <n>', 'tasks that may wait for a slot', integer('--queue-capacity'))
    .option('--default-priority <priority>', `${Priority.options.join(' or ')}, for requests that name none`, priority)
    .action(async (id: string, options: { queueCapacity?: number; defaultPriority?: Priority }) => {
      const body = {
        ...(options.queueCapacity !== undefined ? { queue_capacity: options.queueCapacity } : {}),
        ...(options.defaultPriority !== undefined ? { default_priority: options.defaultPriority } : {}),
      }
      if (Object.keys(body).length === 0) throw new CliError('nothing to set: pass --queue-capacity and/or --default-priority', EXIT_USAGE)
      const { data } = await request(ctx.connection(), { method: 'PATCH', path: poolPath(id), body, schema: PoolView })
      ctx.print(data, () => `pool ${data.id}: queue_capacity=${data.policy.queue_capacity} default_priority=${data.policy.default_priority}`)
    })

  for (const command of PoolCommand.options) {
    const verb = pools.command(`${command} <id>`).description(`${command} the pool on every node that serves it`)
    if (command === 'drain') verb.option('--deadline-ms <ms>', 'how long running tasks may finish', integer('--deadline-ms'))
    verb.action(async (id: string, options: { deadlineMs?: number }) => {
      const body = options.deadlineMs === undefined ? {} : { deadline_ms: options.deadlineMs }
      const { status, data } = await request(ctx.connection(), { method: 'POST', path: `${poolPath(id)}/${command}`, body, schema: PoolCommandResult, accept: [202, 502] })
      ctx.print(data, () => table(['NODE', command.toUpperCase(), 'ERROR'], data.nodes.map((n) => [n.node_id, n.ok ? 'sent' : 'failed', n.error?.message ?? ''])))
      if (status !== 202) throw new CliError(`pool ${id}: some nodes did not take the ${command}`)
    })
  }
}
