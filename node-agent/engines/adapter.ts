import type { EngineKind } from '../../protocol/index.ts'
import type { RunnablePool } from '../config/schema.ts'
import type { EngineCommand } from '../process/engine-process.ts'

/** Where an engine listens. */
export interface EngineTarget {
  host: string
  port: number
}

export interface EngineCallArgs<P> {
  pool: P
  baseUrl: string
  signal: AbortSignal
}

/**
 * What differs between engines: how to start one, what `model` it expects in requests, and the
 * extra steps around readiness. Everything else (health polling, the OpenAI relay) is shared.
 */
export interface EngineAdapter<P extends RunnablePool> {
  readonly kind: P['engine']
  /** Whether the agent starts the engine (else it runs on its own and the agent only uses it). */
  spawns(pool: P): boolean
  /** The process to start; null exactly when `spawns` is false. */
  command(pool: P, target: EngineTarget): EngineCommand | null
  /** The `model` field of requests sent to the engine. */
  modelName(pool: P): string
  /** After the first healthy answer, before the replica counts as ready (Ollama loads its model). */
  warmUp?(args: EngineCallArgs<P>): Promise<void>
  /** When the replica is drained to stopped (Ollama unloads a model from a server it did not start). */
  coolDown?(args: EngineCallArgs<P>): Promise<void>
  /** The engine's version, best effort. */
  readVersion?(args: EngineCallArgs<P>): Promise<string | null>
}

/** An adapter bound to its pool, as the supervisor uses it. */
export interface Engine {
  readonly kind: EngineKind
  readonly spawns: boolean
  readonly healthPath: string
  readonly modelName: string
  command(target: EngineTarget): EngineCommand | null
  warmUp(args: { baseUrl: string; signal: AbortSignal }): Promise<void>
  coolDown(args: { baseUrl: string; signal: AbortSignal }): Promise<void>
  readVersion(args: { baseUrl: string; signal: AbortSignal }): Promise<string | null>
}

export function bindEngine<P extends RunnablePool>(adapter: EngineAdapter<P>, pool: P): Engine {
  return {
    kind: pool.engine,
    spawns: adapter.spawns(pool),
    healthPath: pool.health_path,
    modelName: adapter.modelName(pool),
    command: (target) => adapter.command(pool, target),
    warmUp: async ({ baseUrl, signal }) => adapter.warmUp?.({ pool, baseUrl, signal }),
    coolDown: async ({ baseUrl, signal }) => adapter.coolDown?.({ pool, baseUrl, signal }),
    readVersion: async ({ baseUrl, signal }) => (adapter.readVersion ? adapter.readVersion({ pool, baseUrl, signal }) : null),
  }
}

/** `CUDA_VISIBLE_DEVICES` from the pool's GPU list, over the pool's own `env`. */
export function engineEnv(pool: { env: Record<string, string>; gpus?: (number | string)[] | undefined }): Record<string, string> {
  return pool.gpus === undefined ? { ...pool.env } : { ...pool.env, CUDA_VISIBLE_DEVICES: pool.gpus.join(',') }
}

/** GET a JSON document and read one string field from it; null on any failure. */
export async function readJsonField({ url, field, signal }: { url: string; field: string; signal: AbortSignal }): Promise<string | null> {
  try {
    const response = await fetch(url, { signal })
    if (!response.ok) return null
    const value: unknown = Reflect.get(Object(await response.json()), field)
    return typeof value === 'string' && value !== '' ? value.slice(0, 256) : null
  } catch {
    return null
  }
}
