import { LlorchError } from '../../protocol/index.ts'
import type { RunnableOf } from '../config/schema.ts'
import { engineEnv, readJsonField } from './adapter.ts'
import type { EngineAdapter } from './adapter.ts'

type Pool = RunnableOf<'ollama'>

/** POST /api/generate with an empty prompt: loads (or with keep_alive 0, unloads) the model. */
async function generateEmpty({
  pool,
  baseUrl,
  signal,
  keepAlive,
}: {
  pool: Pool
  baseUrl: string
  signal: AbortSignal
  keepAlive: string | number
}): Promise<void> {
  const response = await fetch(`${baseUrl}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: pool.model, prompt: '', stream: false, keep_alive: keepAlive }),
    signal,
  })
  const text = await response.text()
  if (response.status === 404) {
    throw new LlorchError('model_not_found', `Ollama has no model "${pool.model}"; run \`ollama pull ${pool.model}\` on this node`)
  }
  if (!response.ok) {
    throw new LlorchError('engine_error', `Ollama answered HTTP ${response.status} when loading "${pool.model}": ${text.slice(0, 500)}`)
  }
}

/**
 * Ollama: either the server already running on host:port (`spawn: false`, the usual install) or
 * one the agent starts with `ollama serve` on OLLAMA_HOST. Ready once `/api/version` answers and an
 * empty generate request has loaded the model with `keep_alive`. Requests go to its `/v1` routes
 * with the Ollama model tag as `model`.
 */
export const ollama: EngineAdapter<Pool> = {
  kind: 'ollama',
  spawns: (pool) => pool.spawn,
  command: (pool, { host, port }) =>
    pool.spawn
      ? {
          file: pool.binary,
          args: ['serve', ...pool.args],
          env: { ...engineEnv(pool), OLLAMA_HOST: `${host}:${port}`, OLLAMA_NUM_PARALLEL: String(pool.slots) },
        }
      : null,
  modelName: (pool) => pool.model,
  warmUp: ({ pool, baseUrl, signal }) => generateEmpty({ pool, baseUrl, signal, keepAlive: pool.keep_alive }),
  coolDown: async ({ pool, baseUrl, signal }) => {
    if (!pool.spawn) await generateEmpty({ pool, baseUrl, signal, keepAlive: 0 })
  },
  readVersion: ({ baseUrl, signal }) => readJsonField({ url: `${baseUrl}/api/version`, field: 'version', signal }),
}
