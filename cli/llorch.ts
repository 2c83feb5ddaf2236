#!/usr/bin/env node
/**
 * `llorch`: the admin CLI of a llorch control plane.
 *
 *   llorch nodes list              llorch pools drain demo-model
 *   llorch keys create app --scope inference
 *   llorch usage --group-by key    llorch top
 *   llorch serve --state-dir /var/lib/llorch   (the home profile: see serve/)
 *
 * The URL and admin token come from --url/--admin-token, LLORCH_URL/LLORCH_ADMIN_TOKEN, or the
 * `.llorch/local.json` that `npm start` writes.
 */
import { Command, CommanderError } from 'commander'
import { LLORCH_VERSION } from '../protocol/index.ts'
import { CliError, EXIT_USAGE } from './admin-client.ts'
import { cliContext } from './cli-context.ts'
import { batchCommands } from './batch-commands.ts'
import { keyCommands } from './key-commands.ts'
import { nodeCommands } from './node-commands.ts'
import { poolCommands } from './pool-commands.ts'
import { topCommand } from './top-command.ts'
import { usageCommand } from './usage-command.ts'
import { serveCommand } from '../serve/serve-command.ts'

const program = new Command()
  .name('llorch')
  .description('Administers a llorch control plane: nodes, API keys, pools, usage, a live view.')
  .version(LLORCH_VERSION, '-v, --version')
  .option('--url <url>', 'control plane URL (env LLORCH_URL, else .llorch/local.json)')
  .option('--admin-token <token>', 'admin token or admin API key (env LLORCH_ADMIN_TOKEN, else .llorch/local.json)')
  .option('--json', 'print JSON instead of tables')
  .showHelpAfterError()
  .exitOverride()

const ctx = cliContext(program)
nodeCommands(program, ctx)
keyCommands(program, ctx)
poolCommands(program, ctx)
usageCommand(program, ctx)
batchCommands(program, ctx)
topCommand(program, ctx)
serveCommand(program)

try {
  await program.parseAsync()
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE)
  if (error instanceof CliError) {
    process.stderr.write(`llorch: ${error.message}\n`)
    process.exit(error.exitCode)
  }
  throw error
}
