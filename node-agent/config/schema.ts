import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseDocument } from 'yaml'
import { z } from 'zod'
import { PoolId, PreloadMode } from '../../protocol/index.ts'
import { ConfigError, describeIssue } from './errors.ts'
import type { ConfigProblem } from './errors.ts'

/** Where the agent keeps PID files, engine logs and its status file (the systemd unit's StateDirectory). */
export const DEFAULT_STATE_DIR = '/var/lib/llorch-agent'
/** Between SIGTERM and SIGKILL when an engine is stopped. */
export const ENGINE_KILL_GRACE_MS = 10_000
/** Between health probes while an engine starts. */
export const HEALTH_POLL_INTERVAL_MS = 500
/** Between health probes once an engine is ready; 0 turns the checks off. */
export const LIVENESS_INTERVAL_MS = 10_000
/** Failed probes in a row after which a ready engine counts as crashed. */
export const LIVENESS_FAILURES = 3
export const RESTART_INITIAL_DELAY_MS = 1_000
export const RESTART_MAX_DELAY_MS = 60_000
/** This many crashes within `BREAKER_WINDOW_MS` open the circuit breaker. */
export const BREAKER_MAX_CRASHES = 5
export const BREAKER_WINDOW_MS = 10 * 60_000
/** How long the old engine of a reload may finish its tasks before it is stopped anyway. */
export const RELOAD_DRAIN_MS = 5 * 60_000
/** How long in-flight tasks may run when the agent shuts down. */
export const SHUTDOWN_DRAIN_MS = 30_000
export const LOG_TAIL_LINES = 40

/** An integer field whose type error reads "expected an integer" (zod says "number" for a string). */
const Int = () => z.int({ error: (issue) => (issue.code === 'invalid_type' ? 'expected an integer' : undefined) })

const Port = z.union([Int().min(1).max(65535), z.literal('auto')], {
  error: 'expected an integer 1–65535 or "auto"',
})
const FixedPort = z.int({ error: 'expected an integer 1–65535 ("auto" needs an engine the agent starts)' }).min(1).max(65535)
const GPU_DEVICE_EXPECTED = 'expected a GPU index (0, 1, …) or a GPU UUID ("GPU-…")'
const GpuDevice = z.union([Int().nonnegative(), z.string().regex(/^(GPU|MIG)-[A-Za-z0-9/-]+$/, GPU_DEVICE_EXPECTED)], {
  error: GPU_DEVICE_EXPECTED,
})
const HealthPath = z.string().regex(/^\//, 'a path starting with "/"')
const Millis = Int().nonnegative()
const StartTimeout = Int().positive()

const Restart = z
  .strictObject({
    initial_delay_ms: Millis.default(RESTART_INITIAL_DELAY_MS),
    max_delay_ms: Millis.default(RESTART_MAX_DELAY_MS),
    max_crashes: Int().positive().default(BREAKER_MAX_CRASHES),
    crash_window_ms: Int().positive().default(BREAKER_WINDOW_MS),
  })
  .prefault({})

/** Fields of every replica, whether or not the agent starts its engine. */
const ReplicaFields = {
  id: PoolId,
  host: z.string().min(1).default('127.0.0.1'),
  slots: Int().min(1).max(4096).default(1),
  preload: PreloadMode.default('eager'),
  health_interval_ms: Int().positive().default(HEALTH_POLL_INTERVAL_MS),
  liveness_interval_ms: Millis.default(LIVENESS_INTERVAL_MS),
  liveness_failures: Int().positive().default(LIVENESS_FAILURES),
  reload_drain_ms: Millis.default(RELOAD_DRAIN_MS),
  restart: Restart,
}

/** Fields of engines the agent spawns. */
const ProcessFields = {
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  gpus: z.array(GpuDevice).optional(),
  port: Port.default('auto'),
  stop_grace_ms: Millis.default(ENGINE_KILL_GRACE_MS),
  log_tail_lines: Int().positive().max(10_000).default(LOG_TAIL_LINES),
}

export const LlamaCppPool = z.strictObject({
  engine: z.literal('llamacpp'),
  ...ReplicaFields,
  ...ProcessFields,
  binary: z.string().min(1).default('llama-server'),
  /** Path of the GGUF model file. */
  model: z.string().min(1),
  /** `-c`: total context, shared by the slots. */
  context_size: Int().positive().optional(),
  /** `-ngl`: layers offloaded to the GPU. */
  gpu_layers: Int().nonnegative().optional(),
  health_path: HealthPath.default('/health'),
  start_timeout_ms: StartTimeout.default(10 * 60_000),
})

export const VllmPool = z.strictObject({
  engine: z.literal('vllm'),
  ...ReplicaFields,
  ...ProcessFields,
  binary: z.string().min(1).default('vllm'),
  /** A Hugging Face model id or a local directory. */
  model: z.string().min(1),
  health_path: HealthPath.default('/health'),
  start_timeout_ms: StartTimeout.default(20 * 60_000),
})

export const OllamaPool = z.strictObject({
  engine: z.literal('ollama'),
  ...ReplicaFields,
  ...ProcessFields,
  port: Port.default(11434),
  binary: z.string().min(1).default('ollama'),
  /** The Ollama model tag, e.g. `qwen2.5:7b-instruct`. */
  model: z.string().min(1),
  /** Start `ollama serve` (true) or use the one already running on host:port (false). */
  spawn: z.boolean().default(false),
  /** Sent with the preload request; -1 keeps the model loaded. */
  keep_alive: z.union([z.string().min(1), Int()], { error: 'expected a duration like "30m" or a number of seconds' }).default(-1),
  health_path: HealthPath.default('/api/version'),
  start_timeout_ms: StartTimeout.default(10 * 60_000),
})

export const OpenAIPool = z.strictObject({
  engine: z.literal('openai'),
  ...ReplicaFields,
  port: FixedPort,
  /** The model name the server expects; the pool id when left out. */
  model: z.string().min(1).optional(),
  health_path: HealthPath.default('/v1/models'),
  start_timeout_ms: StartTimeout.default(60_000),
})

export const CommandPool = z.strictObject({
  engine: z.literal('command'),
  ...ReplicaFields,
  ...ProcessFields,
  /** argv; `{port}`, `{host}`, `{model}`, `{slots}` and `{pool}` are replaced in each element. */
  command: z.array(z.string()).min(1),
  model: z.string().min(1).optional(),
  health_path: HealthPath.default('/health'),
  start_timeout_ms: StartTimeout.default(10 * 60_000),
})

export const PoolConfig = z.discriminatedUnion('engine', [LlamaCppPool, VllmPool, OllamaPool, OpenAIPool, CommandPool])
export type PoolConfig = z.infer<typeof PoolConfig>
export type PoolConfigInput = z.input<typeof PoolConfig>

export const AgentConfig = z.strictObject({
  /** Needed by the control-plane link; optional until the agent has one. */
  control_plane_url: z
    .url({ protocol: /^(wss?|https?)$/, error: 'expected a URL starting with wss://, ws://, https:// or http://' })
    .optional(),
  node_token: z.string().min(16).optional(),
  node_token_file: z.string().min(1).optional(),
  /** Ceiling of the reconnect delay to the control plane (full jitter below it). */
  reconnect_max_ms: Int().min(10).max(600_000).default(30_000),
  state_dir: z.string().min(1).default(DEFAULT_STATE_DIR),
  log_level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  shutdown_drain_ms: Millis.default(SHUTDOWN_DRAIN_MS),
  pools: z.array(PoolConfig).min(1).max(256),
})
export type AgentConfig = z.infer<typeof AgentConfig>
export type AgentConfigInput = z.input<typeof AgentConfig>

/** The top level alone: pools are checked one by one so one bad pool hides no other problem. */
const AgentConfigTop = AgentConfig.extend({ pools: z.array(z.unknown()).min(1).max(256) })

const PLACEHOLDERS = ['port', 'host', 'model', 'slots', 'pool'] as const
const POOL_KEYS = [...new Set([LlamaCppPool, VllmPool, OllamaPool, OpenAIPool, CommandPool].flatMap((s) => Object.keys(s.shape)))]

function knownKeys(at: readonly PropertyKey[]): readonly string[] {
  if (at.length === 0) return Object.keys(AgentConfigTop.shape)
  if (at.length === 2 && at[0] === 'pools') return POOL_KEYS
  if (at.length === 3 && at[2] === 'restart') return Object.keys(Restart.unwrap().shape)
  return []
}

const spawnsProcess = (pool: PoolConfig) => pool.engine !== 'openai' && (pool.engine !== 'ollama' || pool.spawn)

/** Problems no single field shows: duplicates, placeholders, a token given twice. */
function crossCheck(input: unknown, pools: ReadonlyMap<number, PoolConfig>): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const top = Object(input)
  if (Reflect.get(top, 'node_token') !== undefined && Reflect.get(top, 'node_token_file') !== undefined) {
    problems.push({ path: 'node_token_file', message: 'give node_token or node_token_file, not both' })
  }
  if (Reflect.get(top, 'control_plane_url') !== undefined && Reflect.get(top, 'node_token') === undefined && Reflect.get(top, 'node_token_file') === undefined) {
    problems.push({ path: 'node_token', message: 'control_plane_url is set, so expected node_token or node_token_file (the token POST /v2/nodes printed), got neither' })
  }
  const ids = new Map<string, number>()
  const ports = new Map<string, number>()
  for (const [i, pool] of pools) {
    const first = ids.get(pool.id)
    if (first !== undefined) problems.push({ path: `pools[${i}].id`, message: `duplicate pool id "${pool.id}" (also pools[${first}])` })
    else ids.set(pool.id, i)
    if (spawnsProcess(pool) && pool.port !== 'auto') {
      const key = `${pool.host}:${pool.port}`
      const other = ports.get(key)
      if (other !== undefined) problems.push({ path: `pools[${i}].port`, message: `${key} is also used by pools[${other}]; use "auto" or another port` })
      else ports.set(key, i)
    }
    if (pool.engine === 'ollama' && !pool.spawn && pool.port === 'auto') {
      problems.push({ path: `pools[${i}].port`, message: 'port "auto" needs spawn: true; give the port of the running Ollama (11434 by default)' })
    }
    if (pool.engine === 'command') {
      const used = new Set<string>()
      pool.command.forEach((arg, j) => {
        for (const match of arg.matchAll(/\{([a-z_]+)\}/g)) {
          const name = match[1] ?? ''
          used.add(name)
          if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
            const known = PLACEHOLDERS.map((p) => `{${p}}`).join(', ')
            problems.push({ path: `pools[${i}].command[${j}]`, message: `unknown placeholder {${name}}; expected one of ${known}` })
          }
        }
      })
      if (used.has('model') && pool.model === undefined) {
        problems.push({ path: `pools[${i}].model`, message: 'the command uses {model}, so expected a string, got nothing (the field is missing)' })
      }
      if (pool.port === 'auto' && !used.has('port')) {
        problems.push({ path: `pools[${i}].command`, message: 'port is "auto" but the command has no {port} placeholder; add one or set a fixed port' })
      }
    }
  }
  return problems
}

/**
 * Validates a parsed config file as a whole and returns it with defaults applied and relative
 * paths (`state_dir`, `node_token_file`) resolved against `baseDir`. Throws a `ConfigError`
 * listing every problem.
 */
export function parseAgentConfig(input: unknown, { file = 'config', baseDir = process.cwd() }: { file?: string; baseDir?: string } = {}): AgentConfig {
  const problems: ConfigProblem[] = []
  const describe = (issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []) => {
    for (const issue of issues) problems.push(...describeIssue(issue, { input, knownKeys, prefix }))
  }
  const top = AgentConfigTop.safeParse(input)
  if (!top.success) describe(top.error.issues)
  const poolsValue: unknown = top.success ? top.data.pools : Reflect.get(Object(input), 'pools')
  const rawPools: unknown[] = Array.isArray(poolsValue) ? poolsValue : []
  const pools = new Map<number, PoolConfig>()
  rawPools.forEach((raw, i) => {
    const parsed = PoolConfig.safeParse(raw)
    if (parsed.success) pools.set(i, parsed.data)
    else describe(parsed.error.issues, ['pools', i])
  })
  problems.push(...crossCheck(input, pools))
  if (!top.success || problems.length > 0) throw new ConfigError(file, problems)
  const config = top.data
  return {
    ...config,
    state_dir: path.resolve(baseDir, config.state_dir),
    node_token_file: config.node_token_file === undefined ? undefined : path.resolve(baseDir, config.node_token_file),
    pools: rawPools.map((_, i) => pools.get(i)).filter((p) => p !== undefined),
  }
}

function readStructured(file: string, text: string): unknown {
  if (/\.ya?ml$/i.test(file)) {
    const doc = parseDocument(text)
    if (doc.errors.length > 0) {
      throw new ConfigError(
        file,
        doc.errors.map((error) => {
          const at = error.linePos?.[0]
          const where = at ? `line ${at.line}, column ${at.col}: ` : ''
          const what = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
          return { path: null, message: `${where}not valid YAML: ${what}` }
        }),
      )
    }
    return doc.toJS()
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    throw new ConfigError(file, [{ path: null, message: `not valid JSON: ${detail}` }])
  }
}

/** Reads a JSON (`.json`) or YAML (`.yaml`, `.yml`) config file and validates all of it. */
export function loadConfig(file: string): AgentConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : 'unknown error'
    throw new ConfigError(file, [{ path: null, message: `cannot read the file (${code})` }], { cause: error })
  }
  return parseAgentConfig(readStructured(file, text), { file, baseDir: path.dirname(path.resolve(file)) })
}
