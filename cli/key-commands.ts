import type { Command } from 'commander'
import { ApiKeyList, ApiKeyScope, ApiKeyView, CreateApiKeyResponse } from '../protocol/index.ts'
import { CliError, EXIT_USAGE, request } from './admin-client.ts'
import type { CliContext } from './cli-context.ts'
import { addLimitFlags, limitsFromFlags, limitsText } from './limit-flags.ts'
import { table } from './render.ts'

function scope(value: string, previous: ApiKeyScope[]): ApiKeyScope[] {
  const parsed = ApiKeyScope.safeParse(value)
  if (!parsed.success) throw new CliError(`--scope ${value}: expected one of ${ApiKeyScope.options.join(', ')}`, EXIT_USAGE)
  return [...previous, parsed.data]
}

function keyRow(k: ApiKeyView): string[] {
  return [k.id, k.name, k.prefix, k.scopes.join(','), limitsText(k.limits), k.created_at ?? '-', k.revoked_at ?? '-']
}

const KEY_HEAD = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'LIMITS', 'CREATED', 'REVOKED']

/** `llorch keys create|list|set|revoke`. */
export function keyCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('API keys: create, list, set limits, revoke')

  const create = keys
    .command('create <name>')
    .description('create an API key; prints the key once')
    .option('-s, --scope <scope>', `${ApiKeyScope.options.join(' or ')}, repeatable (default inference)`, scope, [])
  addLimitFlags(create, { prefix: '', allowDefault: false, subject: "this key's limit (left out: the pool's key_limits)" })
  create.action(async (name: string, options: { scope: ApiKeyScope[] } & Record<string, unknown>) => {
    const limits = limitsFromFlags(options, '')
    const body = { name, ...(options.scope.length > 0 ? { scopes: options.scope } : {}), ...(limits ? { limits } : {}) }
    const { data } = await request(ctx.connection(), { method: 'POST', path: '/v2/api-keys', body, schema: CreateApiKeyResponse })
    const limitsLine = limits ? `, limits ${limitsText(data.limits)}` : ''
    ctx.print(data, () => `key ${data.id} (${data.name}, ${data.scopes.join(', ')}${limitsLine}) created\nkey (shown once): ${data.key}`)
  })

  const set = keys.command('set <id>').description("change a key's limits (PATCH /v2/api-keys/{id}); each flag sets one limit, the others stay")
  addLimitFlags(set, { prefix: '', allowDefault: true, subject: "this key's limit" })
  set.action(async (id: string, options: Record<string, unknown>) => {
    const connection = ctx.connection()
    if (limitsFromFlags(options, '') === null)
      throw new CliError('nothing to set: pass at least one limit option (llorch keys set --help lists them)', EXIT_USAGE)
    const { data: list } = await request(connection, { method: 'GET', path: '/v2/api-keys', schema: ApiKeyList })
    const current = list.api_keys.find((k) => k.id === id)
    if (!current) throw new CliError(`no API key with id "${id}" (llorch keys list shows them)`)
    const limits = limitsFromFlags(options, '', current.limits)
    const { data } = await request(connection, { method: 'PATCH', path: `/v2/api-keys/${encodeURIComponent(id)}`, body: { limits }, schema: ApiKeyView })
    ctx.print(data, () => `key ${data.id} (${data.name}): limits ${limitsText(data.limits)}`)
  })

  keys
    .command('list')
    .description('every key, without secrets')
    .action(async () => {
      const { data } = await request(ctx.connection(), { method: 'GET', path: '/v2/api-keys', schema: ApiKeyList })
      ctx.print(data, () =>
        data.api_keys.length === 0 ? 'no API keys; create one with: llorch keys create <name>' : table(KEY_HEAD, data.api_keys.map(keyRow)),
      )
    })

  keys
    .command('revoke <id>')
    .description('revoke a key: refused at once by this control plane, within seconds everywhere')
    .action(async (id: string) => {
      const { data } = await request(ctx.connection(), { method: 'DELETE', path: `/v2/api-keys/${encodeURIComponent(id)}`, schema: ApiKeyView })
      ctx.print(data, () => `key ${data.id} (${data.name}) revoked`)
    })
}
