import type { Command } from 'commander'
import { z } from 'zod'
import { KeyLimits, PoolCommand, PoolCommandResult, PoolList, PoolView, PreloadMode, Priority } from '../protocol/index.ts'
import { CliError, EXIT_USAGE, request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { camel, integer } from './cli-context.ts'
import { addLimitFlags, limitsFromFlags, limitsText } from './limit-flags.ts'
import { REPLICA_HEAD, replicaRows, table } from './render.ts'

const poolPath = (id: string) => `/v2/pools/${id.split('/').map(encodeURIComponent).join('/')}`

function poolTable(pools: readonly PoolView[]): string {
  return table(
    ['POOL', 'ENGINE', 'STATE', 'QUEUE', 'SLOTS', 'REPLICAS'],
    pools.map((p) => [
      p.id,
      p.engine,
      p.state,
      p.queue_depth ?? '?',
      `${p.slots_busy ?? '?'}/${p.slots_total}`,
      p.replicas.map((r) => `${r.node_id}:${r.state}`).join(' ') || '-',
    ]),
  )
}

/** Millisecond policy fields `pools set` takes: flag, field, help. */
const MS_FIELDS = [
  ['first-token-timeout-ms', 'first_token_timeout_ms', 'from dispatch to the first token'],
  ['idle-timeout-ms', 'idle_timeout_ms', 'longest silence between tokens'],
  ['queue-timeout-ms', 'queue_timeout_ms', 'longest wait in the queue for a slot'],
  ['run-timeout-ms', 'run_timeout_ms', 'longest run of one task on its engine'],
  ['scale-out-wait-ms', 'scale_out_wait_ms', 'predicted queue wait past which another stopped replica starts'],
  ['batch-aging-ms', 'batch_aging_ms', 'a batch task waiting this long goes before interactive ones'],
] as const

/** How `pools show` and `pools set` print one policy field. */
function policyText(field: string, value: unknown): string {
  if (field === 'key_limits') return `${field}=${limitsText(KeyLimits.optional().parse(value))}`
  if (field === 'idle_drain_ms') return `${field}=${value ?? 'off'}`
  return `${field}=${value ?? '-'}`
}

function share(value: string): number {
  const n = Number(value)
  if (!(n > 0 && n <= 1)) throw new CliError(`--batch-slot-share ${value}: expected a number above 0 and at most 1`, EXIT_USAGE)
  return n
}

function preloadMode(value: string): PreloadMode {
  const parsed = PreloadMode.safeParse(value)
  if (!parsed.success) throw new CliError(`--preload-mode ${value}: expected one of ${PreloadMode.options.join(', ')}`, EXIT_USAGE)
  return parsed.data
}

/** Wrapped because commander turns a parser's `null` into `""`. */
function idleDrain(value: string): { ms: number | null } {
  if (value === 'off') return { ms: null }
  return { ms: integer('--idle-drain-ms')(value) }
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
      const policy = Object.entries(data.policy)
        .map(([field, value]) => policyText(field, value))
        .join('  ')
      ctx.print(data, () => `${poolTable([data])}\npolicy: ${policy}\n\n${table(REPLICA_HEAD, replicaRows(data.replicas))}`)
    })

  const set = pools
    .command('set <id>')
    .description('change the pool policy; each flag sets one field, the others stay')
    .option('--queue-capacity <n>', 'tasks that may wait for a slot', integer('--queue-capacity'))
    .option('--default-priority <priority>', `${Priority.options.join(' or ')}, for requests that name none`, priority)
    .option('--preload-mode <mode>', `${PreloadMode.options.join(' or ')}: whether idle drain keeps one replica ready`, preloadMode)
    .option('--idle-drain-ms <ms|off>', 'drain a replica idle this long; off never does', idleDrain)
    .option('--batch-slot-share <share>', 'share of the ready slots batch tasks of every batch and key may hold at once, above 0 up to 1', share)
  for (const [flag, , help] of MS_FIELDS) set.option(`--${flag} <ms>`, help, integer(`--${flag}`))
  addLimitFlags(set, { prefix: 'key-', allowDefault: false, subject: 'default limit of keys that set none (key_limits)' })
  set.action(async (id: string, options: Record<string, unknown>) => {
    const connection = ctx.connection()
    const idleDrainMs = options.idleDrainMs === undefined ? undefined : z.object({ ms: z.int().nullable() }).parse(options.idleDrainMs).ms
    const fields: Array<[string, unknown]> = [
      ['queue_capacity', options.queueCapacity],
      ['default_priority', options.defaultPriority],
      ['preload_mode', options.preloadMode],
      ['idle_drain_ms', idleDrainMs],
      ['batch_slot_share', options.batchSlotShare],
      ...MS_FIELDS.map(([flag, field]): [string, unknown] => [field, options[camel(flag)]]),
    ]
    const body = Object.fromEntries(fields.filter(([, value]) => value !== undefined))
    // key_limits is replaced as a whole by a PATCH: the flags change the fields they name in the current one.
    if (limitsFromFlags(options, 'key-') !== null) {
      const { data: current } = await request(connection, { method: 'GET', path: poolPath(id), schema: PoolView })
      body.key_limits = limitsFromFlags(options, 'key-', current.policy.key_limits)
    }
    if (Object.keys(body).length === 0) throw new CliError('nothing to set: pass at least one policy option (llorch pools set --help lists them)', EXIT_USAGE)
    const { data } = await request(connection, { method: 'PATCH', path: poolPath(id), body, schema: PoolView })
    const changed = Object.entries(data.policy).filter(([field]) => field in body)
    ctx.print(data, () => `pool ${data.id}: ${changed.map(([field, value]) => policyText(field, value)).join(' ')}`)
  })

  for (const command of PoolCommand.options) {
    const verb = pools.command(`${command} <id>`).description(`${command} the pool on every node that serves it`)
    if (command !== 'preload') verb.option('--deadline-ms <ms>', 'how long running tasks may finish (a reload: on each node in turn)', integer('--deadline-ms'))
    verb.action(async (id: string, options: { deadlineMs?: number }) => {
      const body = options.deadlineMs === undefined ? {} : { deadline_ms: options.deadlineMs }
      const { status, data } = await request(ctx.connection(), {
        method: 'POST',
        path: `${poolPath(id)}/${command}`,
        body,
        schema: PoolCommandResult,
        accept: [202, 502],
      })
      ctx.print(data, () =>
        table(
          ['NODE', command.toUpperCase(), 'ERROR'],
          data.nodes.map((n) => [n.node_id, n.ok ? 'sent' : 'failed', n.error?.message ?? '']),
        ),
      )
      if (status !== 202) throw new CliError(`pool ${id}: some nodes did not take the ${command}`)
    })
  }
}
