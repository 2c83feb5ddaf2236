import type { Command } from 'commander'
import { UsageGroupBy, UsageReport } from '../protocol/index.ts'
import { request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { table } from './render.ts'

/** `llorch usage`: requests and tokens from GET /v2/usage. */
export function usageCommand(program: Command, ctx: CliContext): void {
  program
    .command('usage')
    .description('requests and tokens of finished tasks (written by pools within seconds)')
    .option('--from <date>', 'inclusive: 2026-11-01 or an ISO date-time')
    .option('--to <date>', 'exclusive')
    .option('--key <id>', 'one API key id')
    .option('--pool <id>', 'one pool')
    .option('--group-by <what>', UsageGroupBy.options.join(', '))
    .action(async (options: { from?: string; to?: string; key?: string; pool?: string; groupBy?: string }) => {
      const query = new URLSearchParams()
      for (const [name, value] of [
        ['from', options.from],
        ['to', options.to],
        ['key', options.key],
        ['pool', options.pool],
        ['group_by', options.groupBy],
      ] as const) {
        if (value !== undefined) query.set(name, value)
      }
      const { data } = await request(ctx.connection(), { method: 'GET', path: `/v2/usage${query.size > 0 ? `?${query}` : ''}`, schema: UsageReport })
      ctx.print(data, () => {
        const t = data.totals
        const rows = data.groups.map((g) => [g.group ?? '(admin token)', g.requests, g.prompt_tokens, g.completion_tokens, g.total_tokens])
        rows.push(['total', t.requests, t.prompt_tokens, t.completion_tokens, t.total_tokens])
        return table([(data.group_by ?? '').toUpperCase() || 'USAGE', 'REQUESTS', 'PROMPT', 'COMPLETION', 'TOTAL'], rows)
      })
    })
}
