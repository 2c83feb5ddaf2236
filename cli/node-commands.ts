import type { Command } from 'commander'
import { CreateNodeResponse, NodeDrainResult, NodeList, NodeView } from '../protocol/index.ts'
import { CliError, EXIT_USAGE, request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { integer } from './cli-context.ts'
import { REPLICA_HEAD, ago, gpusOf, replicaRows, table } from './render.ts'

function labels(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=')
      if (at <= 0) throw new CliError(`--label ${pair}: expected key=value`, EXIT_USAGE)
      return [pair.slice(0, at), pair.slice(at + 1)]
    }),
  )
}

function nodeTable(nodes: readonly NodeView[]): string {
  return table(
    ['ID', 'NAME', 'STATUS', 'HOST', 'GPUS', 'LAST SEEN', 'REPLICAS'],
    nodes.map((n) => [
      n.id,
      n.name,
      n.status,
      n.hostname ?? '-',
      gpusOf(n),
      ago(n.last_seen_at),
      n.replicas.map((r) => `${r.pool}:${r.state}`).join(' ') || '-',
    ]),
  )
}

/** `llorch nodes add|list|show|revoke|drain|uncordon`. */
export function nodeCommands(program: Command, ctx: CliContext): void {
  const nodes = program.command('nodes').description('GPU machines: register, list, cordon and drain, uncordon, revoke')

  nodes
    .command('add <name>')
    .description('register a node; prints its token once, for the agent config (node_token_file)')
    .option('-l, --label <key=value...>', 'labels', [])
    .action(async (name: string, options: { label: string[] }) => {
      const { data } = await request(ctx.connection(), {
        method: 'POST',
        path: '/v2/nodes',
        body: { name, labels: labels(options.label) },
        schema: CreateNodeResponse,
      })
      ctx.print(data, () => `node ${data.id} (${data.name}) registered\ntoken (shown once; put it in the agent's node_token_file): ${data.token}`)
    })

  nodes
    .command('list')
    .description('every node with status, GPUs and replicas')
    .action(async () => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: '/v2/nodes', schema: NodeList })
      ctx.print(data, () => (data.nodes.length === 0 ? 'no nodes; register one with: llorch nodes add <name>' : nodeTable(data.nodes)))
    })

  nodes
    .command('show <id>')
    .description('one node and its replicas')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: `/v2/nodes/${encodeURIComponent(id)}`, schema: NodeView })
      ctx.print(data, () => `${nodeTable([data])}\n\n${table(REPLICA_HEAD, replicaRows(data.replicas))}`)
    })

  nodes
    .command('revoke <id>')
    .description('revoke the node token and disconnect its agent')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'DELETE', path: `/v2/nodes/${encodeURIComponent(id)}`, schema: NodeView })
      ctx.print(data, () => `node ${data.id} (${data.name}) revoked; its agent was disconnected`)
    })

  nodes
    .command('drain <id>')
    .description('cordon the node for maintenance: no new task, running ones finish, every pool drains on this node only (POST /v2/nodes/{id}/drain)')
    .option('--deadline-ms <ms>', 'how long running tasks may finish', integer('--deadline-ms'))
    .action(async (id: string, options: { deadlineMs?: number }) => {
      const body = options.deadlineMs === undefined ? {} : { deadline_ms: options.deadlineMs }
      const { status, data } = await request(ctx.connection(), {
        method: 'POST',
        path: `/v2/nodes/${encodeURIComponent(id)}/drain`,
        body,
        schema: NodeDrainResult,
        accept: [202, 502],
      })
      ctx.print(data, () =>
        table(
          ['POOL', 'DRAIN', 'ERROR'],
          data.pools.map((p) => [p.pool, p.ok ? 'sent' : 'failed', p.error?.message ?? '']),
        ),
      )
      if (status !== 202) throw new CliError(`node ${id}: some pools did not take the drain`)
    })

  nodes
    .command('uncordon <id>')
    .description('lift the cordon: the node takes tasks again (POST /v2/nodes/{id}/uncordon)')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'POST', path: `/v2/nodes/${encodeURIComponent(id)}/uncordon`, schema: NodeView })
      ctx.print(data, () => `node ${data.id} (${data.name}) uncordoned; each pool's policy decides what starts on it`)
    })
}
