import type { RunnableOf } from '../config/schema.ts'
import type { EngineAdapter } from './adapter.ts'

/**
 * Any OpenAI-compatible server that runs on its own (started by the operator or another
 * supervisor): the agent only health-checks it and relays requests to it.
 */
export const openai: EngineAdapter<RunnableOf<'openai'>> = {
  kind: 'openai',
  spawns: () => false,
  command: () => null,
  modelName: (pool) => pool.model ?? pool.id,
}
