#!/usr/bin/env node
import { Command, Option } from 'commander'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { describeIssues } from '../../protocol/describe-issues.ts'
import { jsonLineLog } from './log.ts'
import { startLibsqlServer } from './server.ts'

const DEFAULT_PORT = 8880
const DEFAULT_FILE = '.llorch/registry.db'

const CliOptions = z.object({
  port: z
    .string()
    .regex(/^\d+$/, 'expected an integer 0–65535 (0 picks a free port)')
    .transform(Number)
    .refine((p) => p <= 65_535, 'expected an integer 0–65535 (0 picks a free port)'),
  file: z.string().min(1, 'expected the path of a database file'),
  host: z.string().min(1, 'expected a host name or address'),
  authToken: z.string().min(1, 'expected a non-empty token').optional(),
  authTokenFile: z.string().min(1, 'expected the path of a file holding the token').optional(),
})

const program = new Command('libsql-server')
  .description('Serve a libSQL database file over HTTP (Hrana /v2 and /v3 pipeline, JSON) for @libsql/client')
  .option('--port <port>', 'port to listen on, 0 picks a free one', String(DEFAULT_PORT))
  .option('--file <path>', 'database file, created with its folder if missing', DEFAULT_FILE)
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .addOption(
    new Option('--auth-token <token>', 'require "Authorization: Bearer <token>" (needed to bind anything but loopback)').env('LIBSQL_SERVER_AUTH_TOKEN'),
  )
  .addOption(new Option('--auth-token-file <path>', 'read the token from this file (kept out of ps)').conflicts('authToken'))
  .showHelpAfterError()

program.parse()
const parsed = CliOptions.safeParse(program.opts())
if (!parsed.success) {
  console.error(`libsql-server: ${describeIssues(parsed.error.issues)}`)
  process.exit(2)
}

const { authTokenFile, ...options } = parsed.data
if (authTokenFile !== undefined) {
  try {
    options.authToken = readFileSync(authTokenFile, 'utf8').trim()
  } catch (error) {
    console.error(`libsql-server: --auth-token-file ${authTokenFile}: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(2)
  }
}
const server = await startLibsqlServer({ ...options, log: jsonLineLog }).catch((error: unknown) => {
  console.error(`libsql-server: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
jsonLineLog('libsql.listening', { url: server.url, file: path.resolve(options.file), auth: options.authToken !== undefined })

let stopping = false
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) process.exit(1)
  stopping = true
  jsonLineLog('libsql.stopping', { signal })
  await server.close()
  process.exit(0)
}
process.on('SIGINT', (signal) => void stop(signal))
process.on('SIGTERM', (signal) => void stop(signal))
