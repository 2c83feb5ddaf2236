import type { Command } from 'commander'
import { AdminBatch, AdminBatchList } from '../protocol/index.ts'
import { request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { integer } from './cli-context.ts'
import { ago, table } from './render.ts'

const iso = (seconds: number | null) => (seconds === null ? null : new Date(seconds * 1000).toISOString())

function batchTable(batches: readonly AdminBatch[]): string {
  return table(
    ['ID', 'KEY', 'STATUS', 'MODEL', 'DONE', 'FAILED', 'CREATED', 'PREDICTED END'],
    batches.map((b) => [
      b.id,
      b.api_key_id,
      b.status,
      b.model ?? '-',
      `${b.request_counts.completed}/${b.request_counts.total}`,
      b.request_counts.failed,
      ago(iso(b.created_at)),
      iso(b.llorch_predicted_completion_at) ?? '-',
    ]),
  )
}

function batchDetail(b: AdminBatch): string {
  const errors = b.errors?.data.map((e) => `  line ${e.line ?? '-'} ${e.param ?? ''}: ${e.code}: ${e.message}`) ?? []
  const files = [`input ${b.input_file_id}`, `output ${b.output_file_id ?? '-'}`, `errors ${b.error_file_id ?? '-'}`].join('  ')
  return [batchTable([b]), '', `endpoint ${b.endpoint}  ${files}`, ...(errors.length > 0 ? ['validation errors:', ...errors] : [])].join('\n')
}

/** `llorch batches list|show|cancel`: every key's batches, as the admin API shows them. */
export function batchCommands(program: Command, ctx: CliContext): void {
  const batches = program.command('batches').description("the Batch API's batches of every key: list, show, cancel")

  batches
    .command('list')
    .description('batches, newest first, with progress')
    .option('--limit <n>', 'how many (1-100)', integer('--limit'), 20)
    .option('--after <id>', 'the page after this batch')
    .action(async (options: { limit: number; after?: string }) => {
      const query = new URLSearchParams({ limit: String(options.limit), ...(options.after ? { after: options.after } : {}) })
      const { data } = await request(ctx.connection(), { method: 'GET', path: `/v2/batches?${query}`, schema: AdminBatchList })
      ctx.print(data, () => (data.data.length === 0 ? 'no batches' : `${batchTable(data.data)}${data.has_more ? `\nmore: --after ${data.last_id}` : ''}`))
    })

  batches
    .command('show <id>')
    .description('one batch: progress, files, validation errors')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: `/v2/batches/${encodeURIComponent(id)}`, schema: AdminBatch })
      ctx.print(data, () => batchDetail(data))
    })

  batches
    .command('cancel <id>')
    .description('stop its running lines; what finished stays in its output file')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'POST', path: `/v2/batches/${encodeURIComponent(id)}/cancel`, schema: AdminBatch })
      ctx.print(data, () => `batch ${data.id} ${data.status}: ${data.request_counts.completed} of ${data.request_counts.total} lines done`)
    })
}
