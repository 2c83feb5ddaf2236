import { fillPlaceholders } from '../config/placeholders.ts'
import type { RunnableOf } from '../config/schema.ts'
import { engineEnv } from './adapter.ts'
import type { EngineAdapter } from './adapter.ts'

type Pool = RunnableOf<'command'>

/**
 * Any program that serves the OpenAI API: an argv from the config with placeholders filled in,
 * followed by `args`. Requests carry the pool id as `model`.
 */
export const command: EngineAdapter<Pool> = {
  kind: 'command',
  spawns: () => true,
  command: (pool, { host, port }) => {
    const values: Record<string, string> = { port: String(port), host, slots: String(pool.slots), pool: pool.id, model: pool.model ?? '' }
    const [file = '', ...rest] = pool.command.map((arg) => fillPlaceholders(arg, values))
    return { file, args: [...rest, ...pool.args], env: engineEnv(pool) }
  },
  modelName: (pool) => pool.id,
}
