import type { RunnableOf } from '../config/schema.ts'
import { engineEnv, readJsonField } from './adapter.ts'
import type { EngineAdapter } from './adapter.ts'

/**
 * llama.cpp's `llama-server`: opens its port at once and answers 503 "Loading model" until the
 * model is in memory, then `/health` 200. `-np` is the number of slots; `--metrics` enables
 * `/metrics`. It ignores the `model` field of requests; `--alias` names the model in `/v1/models`.
 */
export const llamacpp: EngineAdapter<RunnableOf<'llamacpp'>> = {
  kind: 'llamacpp',
  spawns: () => true,
  command: (pool, { host, port }) => ({
    file: pool.binary,
    args: [
      '-m',
      pool.model,
      '--host',
      host,
      '--port',
      String(port),
      '-np',
      String(pool.slots),
      '--alias',
      pool.id,
      '--metrics',
      ...(pool.context_size === undefined ? [] : ['-c', String(pool.context_size)]),
      ...(pool.gpu_layers === undefined ? [] : ['-ngl', String(pool.gpu_layers)]),
      ...pool.args,
    ],
    env: engineEnv(pool),
  }),
  modelName: (pool) => pool.id,
  readVersion: ({ baseUrl, signal }) => readJsonField({ url: `${baseUrl}/props`, field: 'build_info', signal }),
}
