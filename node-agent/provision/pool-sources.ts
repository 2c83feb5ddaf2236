import type { PoolConfig, RunnablePool } from '../config/schema.ts'
import type { EngineArchive, ModelSource } from '../config/sources.ts'

/** What of a pool the agent fetches before its engine can start. */
export interface PoolSources {
  model: ModelSource | null
  binary: EngineArchive | null
}

/** Where the fetched sources of a pool lie in the cache, and what its engine needs to read them offline. */
export interface LocalPaths {
  model?: string
  binary?: string
  env?: Record<string, string>
}

const sourceOf = <T extends object>(value: string | T | undefined): T | null => (value === undefined || typeof value === 'string' ? null : value)

export function sourcesOf(pool: PoolConfig): PoolSources {
  switch (pool.engine) {
    case 'llamacpp':
    case 'vllm':
      return { model: sourceOf(pool.model), binary: sourceOf(pool.binary) }
    case 'ollama':
      return { model: null, binary: sourceOf(pool.binary) }
    case 'command':
      return { model: sourceOf(pool.model), binary: null }
    case 'openai':
      return { model: null, binary: null }
  }
}

export const hasSources = (pool: PoolConfig): boolean => {
  const { model, binary } = sourcesOf(pool)
  return model !== null || binary !== null
}

function local(value: string | object, fetched: string | undefined, what: string): string {
  if (typeof value === 'string') return value
  if (fetched === undefined) throw new Error(`${what} of the pool is a source that was not fetched`)
  return fetched
}

/** The pool with each source replaced by its local path, and the engine's environment extended. */
export function runnableWith(pool: PoolConfig, paths: LocalPaths = {}): RunnablePool {
  const env = { ...pool.env, ...paths.env }
  switch (pool.engine) {
    case 'llamacpp':
      return { ...pool, env, model: local(pool.model, paths.model, 'model'), binary: local(pool.binary, paths.binary, 'binary') }
    case 'vllm':
      return { ...pool, env, model: local(pool.model, paths.model, 'model'), binary: local(pool.binary, paths.binary, 'binary') }
    case 'ollama':
      return { ...pool, env, binary: local(pool.binary, paths.binary, 'binary') }
    case 'command':
      return { ...pool, env, model: pool.model === undefined ? undefined : local(pool.model, paths.model, 'model') }
    case 'openai':
      return pool
  }
}
