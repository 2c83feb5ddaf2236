import { Command } from 'commander'
import { CliError, EXIT_USAGE } from '../cli/admin-client.ts'
import { describeIssues } from '../protocol/index.ts'
import { ServeOptions, serve } from './serve.ts'
import { DEFAULT_STATE_DIR } from './state-dir.ts'

const stateDirOption = ['--state-dir <dir>', `state folder (env LLORCH_STATE_DIR, default ${DEFAULT_STATE_DIR})`, process.env.LLORCH_STATE_DIR || DEFAULT_STATE_DIR] as const

/** Runs `action`; its failure is one `llorch: serve: …` line and exit 1, not a stack trace. */
function reported<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args)
    } catch (error) {
      if (error instanceof CliError) throw error
      throw new CliError(`serve: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}

/** `llorch serve …`: the home profile, the whole control plane on this machine without Cloudflare. */
export function serveCommand(program: Command): void {
  const group = program.command('serve').description('run the production control plane on this machine (workerd + libSQL), no Cloudflare account')
  group
    .command('run', { isDefault: true })
    .description('serve until SIGTERM: registry, control plane in workerd, optionally this box\'s agent')
    .option(...stateDirOption)
    .option('--host <host>', 'address the API binds (the registry always binds loopback)', '127.0.0.1')
    .option('--port <port>', 'API port, 0 picks a free one', '8787')
    .option('--agent-config <file>', "also run this machine's agent with this config (JSON or YAML)")
    .option('--tls-cert <file>', 'PEM certificate chain: workerd serves HTTPS itself')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .action(
      reported(async (options: Record<string, unknown>) => {
        const parsed = ServeOptions.safeParse(options)
        if (!parsed.success) throw new CliError(`serve: ${describeIssues(parsed.error.issues)}`, EXIT_USAGE)
        await serve(parsed.data)
      }),
    )
}
