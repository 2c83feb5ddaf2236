import { z } from 'zod'
import { PoolId, PreloadMode } from '../../protocol/index.ts'
import { BinaryField, ModelField } from './sources.ts'
import type { EngineArchive, ModelSource } from './sources.ts'

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
/** How long the one-token probe generation of an engine restarted as hung may take. */
export const PROBE_TIMEOUT_MS = 30_000
export const RESTART_INITIAL_DELAY_MS = 1_000
export const RESTART_MAX_DELAY_MS = 60_000
/** This many crashes within `BREAKER_WINDOW_MS` open the circuit breaker. */
export const BREAKER_MAX_CRASHES = 5
export const BREAKER_WINDOW_MS = 10 * 60_000
/** How long the old engine of a reload may finish its tasks before it is stopped anyway. */
export const RELOAD_DRAIN_MS = 5 * 60_000
/** How long in-flight tasks may run when the agent shuts down. */
export const SHUTDOWN_DRAIN_MS = 30_000
/** Ceiling of the delay before reconnecting to the control plane. */
export const RECONNECT_MAX_MS = 30_000
/** How long the control plane may take to answer hello before the agent drops the socket and reconnects. */
export const WELCOME_TIMEOUT_MS = 15_000
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

export const Restart = z
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
  probe_timeout_ms: Int().positive().default(PROBE_TIMEOUT_MS),
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
  binary: BinaryField.default('llama-server'),
  /** Path of the GGUF model file, or where to fetch it. */
  model: ModelField,
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
  binary: BinaryField.default('vllm'),
  /** A Hugging Face model id (vLLM downloads it), a local directory, or a snapshot for the agent to fetch. */
  model: ModelField,
  health_path: HealthPath.default('/health'),
  start_timeout_ms: StartTimeout.default(20 * 60_000),
})

export const OllamaPool = z.strictObject({
  engine: z.literal('ollama'),
  ...ReplicaFields,
  ...ProcessFields,
  port: Port.default(11434),
  binary: BinaryField.default('ollama'),
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
  /**
   * argv; `{port}`, `{host}`, `{model}`, `{slots}` and `{pool}` are replaced in each element, as
   * are `{node}` (the Node.js running the agent) and `{config_dir}` (the config file's folder).
   */
  command: z.array(z.string()).min(1),
  /** `{model}` in the command: a string, or the local path of a fetched source. */
  model: ModelField.optional(),
  health_path: HealthPath.default('/health'),
  start_timeout_ms: StartTimeout.default(10 * 60_000),
})

/**
 * The process fields of an engine the agent does not spawn (`openai`): the schema's defaults, and
 * no grace because there is no process to stop.
 */
const NOT_SPAWNED = z.strictObject(ProcessFields).omit({ port: true }).parse({ stop_grace_ms: 0 })

/**
 * One pool, validated as its engine kind demands, then normalised so every pool has the process
 * fields: the rest of the agent reads `pool.stop_grace_ms` without asking which kind it is.
 */
export const PoolConfig = z
  .discriminatedUnion('engine', [LlamaCppPool, VllmPool, OllamaPool, OpenAIPool, CommandPool])
  .transform((pool) => (pool.engine === 'openai' ? { ...NOT_SPAWNED, ...pool } : pool))
/** A pool as the agent uses it, defaults applied and normalised. */
export type PoolConfig = z.infer<typeof PoolConfig>
/** A pool as it is written in a config file. */
export type PoolConfigInput = z.input<typeof PoolConfig>
/** The pool of one engine kind, as configured. */
export type PoolOf<E extends PoolConfig['engine']> = Extract<PoolConfig, { engine: E }>

type Fetched<T> = Exclude<T, ModelSource | EngineArchive>
/** A pool as its engine runs it: fetched sources replaced by their local paths in the cache. */
export type RunnablePool = {
  [E in PoolConfig['engine']]: { [K in keyof PoolOf<E>]: K extends 'model' | 'binary' ? Fetched<PoolOf<E>[K]> : PoolOf<E>[K] }
}[PoolConfig['engine']]
/** The runnable pool of one engine kind, as its adapter sees it. */
export type RunnableOf<E extends PoolConfig['engine']> = Extract<RunnablePool, { engine: E }>

export const AgentConfig = z.strictObject({
  /** Needed by the control-plane link; optional until the agent has one. */
  control_plane_url: z.url({ protocol: /^(wss?|https?)$/, error: 'expected a URL starting with wss://, ws://, https:// or http://' }).optional(),
  node_token: z.string().min(16).optional(),
  node_token_file: z.string().min(1).optional(),
  /** Ceiling of the reconnect delay to the control plane (full jitter below it). */
  reconnect_max_ms: Int().min(10).max(600_000).default(RECONNECT_MAX_MS),
  /** How long to wait for the welcome after hello before reconnecting. */
  welcome_timeout_ms: Int().min(10).max(600_000).default(WELCOME_TIMEOUT_MS),
  state_dir: z.string().min(1).default(DEFAULT_STATE_DIR),
  log_level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  shutdown_drain_ms: Millis.default(SHUTDOWN_DRAIN_MS),
  /** Where fetched models and engines are kept (the Hugging Face cache layout); `<state_dir>/models` when left out. */
  model_cache_dir: z.string().min(1).optional(),
  /** Least recently used files no pool on this box uses are removed to stay under this; no limit when left out. */
  max_cache_bytes: Int().positive().optional(),
  /** A Hugging Face token for gated repositories, read from this file (never logged). */
  hf_token_file: z.string().min(1).optional(),
  /** Serve Prometheus metrics on 127.0.0.1 at this port (0 picks one and logs it); off when left out. */
  metrics_port: Int().min(0).max(65535).optional(),
  pools: z.array(PoolConfig).min(1).max(256),
})
export type AgentConfig = z.infer<typeof AgentConfig>
export type AgentConfigInput = z.input<typeof AgentConfig>
