import { Command } from 'commander'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { z } from 'zod'
import { CliError, EXIT_USAGE } from '../cli/admin-client.ts'
import { describeIssues } from '../protocol/index.ts'
import { DEFAULT_STATE_DIR, statePaths } from './state-dir.ts'

const stateDirOption = [
  '--state-dir <dir>',
  `state folder (env LLORCH_STATE_DIR, default ${DEFAULT_STATE_DIR})`,
  process.env.LLORCH_STATE_DIR || DEFAULT_STATE_DIR,
] as const

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

/**
 * `llorch serve …`: the home profile, the whole control plane on this machine without Cloudflare.
 * Each subcommand loads its modules when it runs, so that every other `llorch` command starts
 * without libSQL, drizzle, execa and yaml.
 */
export function serveCommand(program: Command): void {
  const group = program.command('serve').description('run the production control plane on this machine (workerd + libSQL), no Cloudflare account')
  group
    .command('run', { isDefault: true })
    .description("serve until SIGTERM: registry, control plane in workerd, optionally this box's agent")
    .option(...stateDirOption)
    .option('--host <host>', 'address the API binds (the registry always binds loopback)', '127.0.0.1')
    .option('--port <port>', 'API port, 0 picks a free one', '8787')
    .option('--agent-config <file>', "also run this machine's agent with this config (JSON or YAML)")
    .option('--tls-cert <file>', 'PEM certificate chain: workerd serves HTTPS itself')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .action(
      reported(async (options: Record<string, unknown>) => {
        const { ServeOptions, serve } = await import('./serve.ts')
        const parsed = ServeOptions.safeParse(options)
        if (!parsed.success) {
          // Named as the operator typed them: `--tls-key`, not `tlsKey`.
          const issues = parsed.error.issues.map((issue) => ({
            ...issue,
            path: issue.path.map((key) => `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`),
          }))
          throw new CliError(`serve: ${describeIssues(issues)}`, EXIT_USAGE)
        }
        await serve(parsed.data)
      }),
    )
  group
    .command('backup <out>')
    .description('write a consistent copy of the state dir to the new folder OUT, while serving or not')
    .option(...stateDirOption)
    .action(
      reported(async (out: string, options: { stateDir: string }) => {
        const { backup } = await import('./backup.ts')
        const { files } = await backup(options.stateDir, out)
        process.stdout.write(`llorch serve: backup of ${statePaths(options.stateDir).root} in ${out} (${files.join(', ')})\n`)
      }),
    )
  group
    .command('restore <in>')
    .description('restore a backup onto an empty state dir; the next llorch serve there serves the same keys and nodes')
    .option(...stateDirOption)
    .action(
      reported(async (input: string, options: { stateDir: string }) => {
        const { restore } = await import('./restore.ts')
        const { version, createdAt } = restore(input, options.stateDir)
        process.stdout.write(`llorch serve: restored the backup of ${createdAt} (llorch ${version}) into ${statePaths(options.stateDir).root}\n`)
      }),
    )
  group
    .command('export')
    .description('write the registry as SQL for a new Turso database (turso db shell DB < dump.sql)')
    .option(...stateDirOption)
    .option('-o, --out <file>', 'write here instead of stdout')
    .action(
      reported(async (options: { stateDir: string; out?: string }) => {
        const stream = options.out ? createWriteStream(options.out, { mode: 0o600 }) : process.stdout
        const { exportRegistrySql } = await import('./export-sql.ts')
        const { tables, rows } = await exportRegistrySql(statePaths(options.stateDir).registry, (chunk) => stream.write(chunk))
        if (stream !== process.stdout) {
          stream.end()
          await once(stream, 'finish')
        }
        process.stderr.write(`llorch serve: exported ${tables} tables, ${rows} rows\n`)
      }),
    )
  group
    .command('init')
    .description('create the state dir, admin token and registry credential, and migrate the registry; changes nothing that exists')
    .option(...stateDirOption)
    .action(
      reported(async (options: { stateDir: string }) => {
        const { init } = await import('./init.ts')
        for (const line of await init(options.stateDir)) process.stdout.write(`llorch serve: ${line}\n`)
      }),
    )
  group
    .command('doctor')
    .description('check the state dir and its permissions, the disk, the port, workerd and the migrations against this release')
    .option(...stateDirOption)
    .option('--host <host>', 'address llorch serve will bind', '127.0.0.1')
    .option('--port <port>', 'port llorch serve will bind', '8787')
    .action(
      reported(async (options: { stateDir: string; host: string; port: string }) => {
        const port = z.coerce.number().int().min(1).max(65_535).safeParse(options.port)
        if (!port.success) throw new CliError(`serve doctor: --port: expected an integer 1–65535, got ${options.port}`, EXIT_USAGE)
        const [{ doctor }, { failed, renderFinding }] = await Promise.all([import('./doctor.ts'), import('../node-agent/checks/finding.ts')])
        const findings = await doctor({ stateDir: options.stateDir, host: options.host, port: port.data })
        for (const finding of findings) process.stdout.write(`${renderFinding(finding)}\n`)
        if (failed(findings).length > 0) throw new CliError(`serve doctor: ${failed(findings).length} problem(s)`)
      }),
    )
}
