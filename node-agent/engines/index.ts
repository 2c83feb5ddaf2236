import type { RunnablePool } from '../config/schema.ts'
import { bindEngine } from './adapter.ts'
import type { Engine } from './adapter.ts'
import { command } from './command.ts'
import { llamacpp } from './llamacpp.ts'
import { ollama } from './ollama.ts'
import { openai } from './openai.ts'
import { vllm } from './vllm.ts'

export type { Engine, EngineAdapter, EngineTarget } from './adapter.ts'

/** The adapters, by engine kind. */
export const ENGINE_ADAPTERS = { llamacpp, vllm, ollama, openai, command } as const

/** The adapter for a pool's engine kind, bound to that pool. */
export function engineFor(pool: RunnablePool): Engine {
  switch (pool.engine) {
    case 'llamacpp':
      return bindEngine(ENGINE_ADAPTERS.llamacpp, pool)
    case 'vllm':
      return bindEngine(ENGINE_ADAPTERS.vllm, pool)
    case 'ollama':
      return bindEngine(ENGINE_ADAPTERS.ollama, pool)
    case 'openai':
      return bindEngine(ENGINE_ADAPTERS.openai, pool)
    case 'command':
      return bindEngine(ENGINE_ADAPTERS.command, pool)
  }
}
