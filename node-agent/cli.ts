#!/usr/bin/env node
/**
 * `llorch-agent`: runs on each GPU machine, starts and supervises its inference engines.
 *
 *   llorch-agent init --config /etc/llorch/agent.yaml [--control-plane-url URL]
 *   llorch-agent run --config /etc/llorch/agent.yaml
 *   llorch-agent validate --config agent.yaml [--fields-only]
 *   llorch-agent doctor --config agent.yaml
 *   llorch-agent status [--config FILE | --state-dir DIR] [--json]
 *   llorch-agent pull [--config FILE] [POOL…]
 *   llorch-agent models [--config FILE] [--json]
 *   llorch-agent prune [--config FILE]
 */
import path from 'node:path'
import { Command } from 'commander'
import { LLORCH_VERSION, describeDownload, formatBytes } from '../protocol/index.ts'
import { Agent } from './agent.ts'
import { runDoctor } from './checks/doctor.ts'
import { failed, renderProblem } from './checks/finding.ts'
import { checkLocalFiles } from './checks/local-files.ts'
import { describePools } from './config/describe-pools.ts'
import { ConfigError } from './config/errors.ts'
import { loadConfig } from './config/load.ts'
import { DEFAULT_STATE_DIR } from './config/schema.ts'
import type { AgentConfig } from './config/schema.ts'
import { readGpus } from './gpus/gpus.ts'
import { Link } from './link/link.ts'
import { readNodeToken } from './link/node-token.ts'
import { initConfig } from './init/init-config.ts'
import { createLog } from './log/log.ts'
import { AgentMetrics } from './metrics/agent-metrics.ts'
import { startMetricsServer } from './metrics/metrics-server.ts'
import { provisionerFor } from './provision/agent-cache.ts'
import { listCache } from './provision/cache-listing.ts'
import { removeBlob, unusedRecords } from './provision/cache-usage.ts'
import { hasSources } from './provision/pool-sources.ts'
import type { Provisioner } from './provision/provisioner.ts'
import { progressBar } from './provision/progress-line.ts'
import { lockHolder } from './state-dir/agent-lock.ts'
import { readStatusFile } from './state-dir/status-file.ts'
import type { AgentStatus } from './state-dir/status-file.ts'

/** `status` exits with this when no agent runs (the LSB code for "program is not running"). */
export const EXIT_NOT_RUNNING = 3

const VERSION = LLORCH_VERSION
/** Where install.sh puts the config and the token, and so where init and the systemd unit look. */
const DEFAULT_CONFIG = '/etc/llorch/agent.yaml'
const DEFAULT_TOKEN_FILE = '/etc/llorch/node-token'

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

/** Loads and validates the config, or exits non-zero listing every problem. */
function loadOrExit(file: string): AgentConfig {
  try {
    return loadConfig(file)
  } catch (error) {
    if (error instanceof ConfigError) {
      const count = error.problems.length
      fail(`${error.message}\n${file}: ${count} problem${count === 1 ? '' : 's'}, nothing was started`)
    }
    throw error
  }
}

async function run({ config: file }: { config: string }): Promise<void> {
  const config = loadOrExit(file)
  let token: string | null
  try {
    token = readNodeToken(config, file)
  } catch (error) {
    if (error instanceof ConfigError) fail(`${error.message}\n${file}: nothing was started`)
    throw error
  }
  const log = createLog({ level: config.log_level })
  const agent = new Agent({ config, configPath: path.resolve(file), log, version: VERSION, provisioner: provisionerOrExit(config, file, log) })
  const metrics: AgentMetrics | null = config.metrics_port === undefined ? null : new AgentMetrics({ agent, linkState: () => link?.state ?? 'closed' })
  const link =
    config.control_plane_url && token
      ? new Link({
          url: config.control_plane_url,
          token,
          agent,
          log,
          version: VERSION,
          readGpus: () => readGpus({ log }),
          reconnect: { maxMs: config.reconnect_max_ms },
          welcomeTimeoutMs: config.welcome_timeout_ms,
          ...(metrics ? { metrics: metrics.link } : {}),
        })
      : null
  const metricsPort = config.metrics_port
  const metricsServer =
    metrics && metricsPort !== undefined
      ? await startMetricsServer({ metrics, port: metricsPort, log }).catch((error: unknown) =>
          fail(
            `llorch-agent: cannot serve metrics on 127.0.0.1:${metricsPort} (metrics_port in ${file}): ${error instanceof Error ? error.message : String(error)}`,
          ),
        )
      : null
  // Keeps the process up when no engine or connection does (every pool on-demand).
  const keepAlive = setInterval(() => {}, 2 ** 30)
  let signals = 0
  const shutdown = (signal: NodeJS.Signals) => {
    signals++
    if (signals > 1) {
      log.warn('agent.forced_exit', { signal })
      agent.kill()
      process.exit(130)
    }
    log.info('agent.signal', { signal })
    // Drain first, with the link up, so in-flight tasks can still deliver their last events.
    agent.stop().then(
      async () => {
        await link?.stop()
        await metricsServer?.close()
        clearInterval(keepAlive)
        process.exit(0)
      },
      (error: unknown) => {
        log.error('agent.stop_failed', { err: error instanceof Error ? error.message : String(error) })
        agent.kill()
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
  process.on('uncaughtException', (error) => {
    log.error('agent.crashed', { err: error.stack ?? error.message })
    agent.kill()
    process.exit(1)
  })

  const started = agent.start()
  // The node shows up while its engines still load; tasks wait until a replica is ready.
  link?.start()
  if (!link) log.info('agent.standalone', { reason: 'no control_plane_url in the config' })
  try {
    await started
  } catch (error) {
    // The state dir is locked by another agent, or cannot be written.
    await link?.stop()
    await agent.stop().catch(() => {})
    fail(`llorch-agent: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** The agent's cache, or exit naming `hf_token_file` when the token cannot be read. */
function provisionerOrExit(config: AgentConfig, file: string, log?: ReturnType<typeof createLog>): Provisioner {
  try {
    return provisionerFor(config, { log, configFile: file })
  } catch (error) {
    if (error instanceof ConfigError) fail(`${error.message}\n${file}: nothing was started`)
    throw error
  }
}

async function pull(pools: string[], { config: file }: { config: string }): Promise<void> {
  const config = loadOrExit(file)
  const unknown = pools.filter((id) => !config.pools.some((p) => p.id === id))
  if (unknown.length > 0)
    fail(`llorch-agent: ${file} has no pool ${unknown.map((id) => JSON.stringify(id)).join(', ')} (it has ${config.pools.map((p) => p.id).join(', ')})`)
  const chosen = config.pools.filter((p) => (pools.length === 0 ? hasSources(p) : pools.includes(p.id)))
  const provisioner = provisionerOrExit(config, file)
  const tty = process.stdout.isTTY === true
  let failures = 0
  for (const pool of chosen) {
    if (!hasSources(pool)) {
      process.stdout.write(`pool ${pool.id}: nothing to fetch (its model and engine are local)\n`)
      continue
    }
    let file: string | null = null
    try {
      const paths = await provisioner.provision(pool, {
        refresh: true,
        onProgress: (progress) => {
          if (tty) process.stdout.write(`\r\x1b[2K${progressBar(progress)}`)
          else if (progress.file !== file)
            process.stdout.write(
              `pool ${pool.id}: fetching ${progress.file}${progress.bytes_total === null ? '' : ` (${formatBytes(progress.bytes_total)} in all)`}\n`,
            )
          file = progress.file
        },
      })
      if (tty && file !== null) process.stdout.write('\n')
      const where = [paths.model && `model ${paths.model}`, paths.binary && `engine ${paths.binary}`].filter(Boolean).join(', ')
      process.stdout.write(`pool ${pool.id}: ready, ${where}\n`)
    } catch (error) {
      if (tty && file !== null) process.stdout.write('\n')
      process.stderr.write(`pool ${pool.id}: ${error instanceof Error ? error.message : String(error)}\n`)
      failures += 1
    }
  }
  if (failures > 0) process.exit(1)
}

function ago(ms: number): string {
  return `${since(new Date(ms).toISOString())} ago`
}

function models({ config: file, json }: { config: string; json?: boolean }): void {
  const config = loadOrExit(file)
  const provisioner = provisionerOrExit(config, file)
  const blobs = listCache(provisioner.layout, config.pools)
  if (json) {
    process.stdout.write(`${JSON.stringify({ cache_dir: provisioner.layout.root, blobs }, null, 2)}\n`)
    return
  }
  const rows = [['FILE', 'SIZE', 'SHA256', 'COMMIT', 'POOLS', 'LAST USED', 'SOURCE']]
  for (const b of blobs)
    rows.push([
      b.files.join(','),
      formatBytes(b.size),
      b.sha256.slice(0, 12),
      b.commit?.slice(0, 12) ?? '-',
      b.pools.join(',') || '-',
      ago(b.last_used_at),
      b.source,
    ])
  const total = blobs.reduce((sum, b) => sum + b.size, 0)
  process.stdout.write(
    `${provisioner.layout.root}: ${blobs.length} file${blobs.length === 1 ? '' : 's'}, ${formatBytes(total)}\n${blobs.length > 0 ? `${table(rows)}\n` : ''}`,
  )
}

function prune({ config: file }: { config: string }): void {
  const config = loadOrExit(file)
  const provisioner = provisionerOrExit(config, file)
  const unused = unusedRecords(provisioner.layout, config.pools)
  for (const record of unused) {
    removeBlob(provisioner.layout, record)
    process.stdout.write(`removed ${record.files.join(',')} (${formatBytes(record.size)}, ${record.source})\n`)
  }
  const freed = unused.reduce((sum, r) => sum + r.size, 0)
  process.stdout.write(`${provisioner.layout.root}: removed ${unused.length} file${unused.length === 1 ? '' : 's'} no pool uses, ${formatBytes(freed)} freed\n`)
}

async function validate({ config: file, fieldsOnly }: { config: string; fieldsOnly?: boolean }): Promise<void> {
  const config = loadOrExit(file)
  const problems = fieldsOnly ? [] : failed(await checkLocalFiles(config))
  if (problems.length > 0) {
    fail([...problems.map((p) => renderProblem(file, p)), `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`].join('\n'))
  }
  process.stdout.write(`${file}: ok, ${describePools(config)}${fieldsOnly ? ' (fields only; files not checked)' : ''}\n`)
}

async function doctor({ config: file }: { config: string }): Promise<void> {
  process.exitCode = await runDoctor(file, (line) => process.stdout.write(`${line}\n`))
}

async function init(options: { config: string; controlPlaneUrl?: string; tokenFile: string; stateDir: string; force?: boolean }): Promise<void> {
  const result = await initConfig(options.config, options)
  if (!result.ok) fail(`llorch-agent: ${result.message}`)
  process.stdout.write(
    `${result.summary}\nNext: put the node token in ${options.tokenFile}, edit the lines marked CHANGE, then run llorch-agent doctor --config ${options.config}\n`,
  )
}

function since(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

function renderStatus(status: AgentStatus, stateDir: string): string {
  const head = `llorch-agent ${status.agent_version} (pid ${status.agent_pid}), up ${since(status.started_at)}, ${status.running_tasks} task${status.running_tasks === 1 ? '' : 's'} running, state dir ${stateDir}`
  const rows = [['POOL', 'ENGINE', 'STATE', 'SLOTS', 'VERSION', 'REASON']]
  for (const r of status.replicas) {
    rows.push([
      r.pool,
      r.engine,
      r.state,
      `${r.slots_busy}/${r.slots}`,
      r.engine_version ?? '-',
      r.download ? describeDownload(r.download) : ((r.reason ?? '').split('\n')[0] ?? ''),
    ])
  }
  return `${head}\n${table(rows)}\n`
}

function status(options: { config?: string; stateDir?: string; json?: boolean }): void {
  const stateDir = path.resolve(options.stateDir ?? (options.config ? loadOrExit(options.config).state_dir : DEFAULT_STATE_DIR))
  const holder = lockHolder(stateDir)
  const current = readStatusFile(stateDir)
  if (holder === null || current === null || current.agent_pid !== holder.pid) {
    fail(`llorch-agent: no agent is running with state dir ${stateDir}`, EXIT_NOT_RUNNING)
  }
  process.stdout.write(options.json ? `${JSON.stringify(current, null, 2)}\n` : renderStatus(current, stateDir))
}

const program = new Command()
  .name('llorch-agent')
  .description('Starts and supervises the inference engines of this GPU machine for llorch.')
  .version(VERSION, '-v, --version')
  .showHelpAfterError()

program
  .command('run')
  .description('start the agent: stop orphaned engines, start eager pools, supervise them until SIGINT/SIGTERM')
  .requiredOption('-c, --config <file>', 'agent config (JSON, or YAML with .yaml/.yml)')
  .action(run)

program
  .command('init')
  .description('write a commented config for the engines found on PATH (llama-server, vllm, ollama); an existing file is left alone')
  .option('-c, --config <file>', 'where to write it', DEFAULT_CONFIG)
  .option('--control-plane-url <url>', 'the control plane (https://… or wss://…)')
  .option('--token-file <file>', 'where the node token will be', DEFAULT_TOKEN_FILE)
  .option('--state-dir <dir>', "the agent's state dir", DEFAULT_STATE_DIR)
  .option('--force', 'overwrite an existing file')
  .action(init)

program
  .command('validate')
  .description('offline: check the config fields and the files they name (token file, engine programs, model files, state dir); print every problem, exit 1')
  .requiredOption('-c, --config <file>', 'agent config (JSON, or YAML with .yaml/.yml)')
  .option('--fields-only', 'check only the fields, not the files (for a config written for another machine)')
  .action(validate)

program
  .command('doctor')
  .description(
    'everything validate checks, then GPUs (nvidia-smi), the control plane, the node token and one trial link; one line per check with the fix, exit 1 when any fails',
  )
  .option('-c, --config <file>', 'agent config', DEFAULT_CONFIG)
  .action(doctor)

program
  .command('status')
  .description(`show the replicas of the agent running on this machine (exit ${EXIT_NOT_RUNNING} when none runs)`)
  .option('-c, --config <file>', 'read the state dir from this config')
  .option('--state-dir <dir>', `the agent's state dir (default ${DEFAULT_STATE_DIR})`)
  .option('--json', 'print the status file as JSON')
  .action(status)

program
  .command('pull')
  .description(
    'fetch and verify the models and engines of the pools (all that name sources when none is given) into the cache, starting nothing; exit 1 with the reason when one fails',
  )
  .argument('[pools...]', 'pool ids')
  .option('-c, --config <file>', 'agent config', DEFAULT_CONFIG)
  .action(pull)

program
  .command('models')
  .description('list the cache: file, size, sha256, commit, the pools using it, last use')
  .option('-c, --config <file>', 'agent config', DEFAULT_CONFIG)
  .option('--json', 'print it as JSON')
  .action(models)

program
  .command('prune')
  .description('remove from the cache every file no pool of the config uses')
  .option('-c, --config <file>', 'agent config', DEFAULT_CONFIG)
  .action(prune)

await program.parseAsync()
