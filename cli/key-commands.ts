import type { Command } from 'commander'
import { ApiKeyList, ApiKeyScope, ApiKeyView, CreateApiKeyResponse } from '../protocol/index.ts'
import { CliError, EXIT_USAGE, request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { table } from './render.ts'

function scope(value: string, previous: ApiKeyScope[]): ApiKeyScope[] {
  const parsed = ApiKeyScope.safeParse(value)
  if (!parsed.success) throw new CliError(`--scope ${value}: expected one of ${ApiKeyScope.options.join(', ')}`, EXIT_USAGE)
  return [...previous, parsed.data]
}

function keyRow(k: ApiKeyView): string[] {
  return [k.id, k.name, k.prefix, k.scopes.join(','), k.created_at ?? '-', k.revoked_at ?? '-']
}

const KEY_HEAD = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'CREATED', 'REVOKED']

/** `llorch keys create|list|revoke`. */
export function keyCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('API keys: create, list, revoke')

  keys
    .command('create <name>')
    .description('create an API key; prints the key once')
    .option('-s, --scope <scope>', `${ApiKeyScope.options.join(' or ')}, repeatable (default inference)`, scope, [])
    .action(async (name: string, options: { scope: ApiKeyScope[] }) => {
      const body = { name, ...(options.scope.length > 0 ? { scopes: options.scope } : {}) }
      const { data } = await request(ctx.connection(), { method: 'POST', path: '/v2/api-keys', body, schema: CreateApiKeyResponse })
      ctx.print(data, () => `key ${data.id} (${data.name}, ${data.scopes.join(', ')}) created\nkey (shown once): ${data.key}`)
    })

  keys
    .command('list')
    .description('every key, without secrets')
    .action(async () => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: '/v2/api-keys', schema: ApiKeyList })
      ctx.print(data, () => (data.api_keys.length === 0 ? 'no API keys; create one with: llorch keys create <name>' : table(KEY_HEAD, data.api_keys.map(keyRow))))
    })

  keys
    .command('revoke <id>')
    .description('revoke a key: refused at once by this control plane, within seconds everywhere')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'DELETE', path: `/v2/api-keys/${encodeURIComponent(id)}`, schema: ApiKeyView })
      ctx.print(data, () => `key ${data.id} (${data.name}) revoked`)
    })
}
