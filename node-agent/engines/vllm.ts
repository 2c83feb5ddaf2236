import type { RunnableOf } from '../config/schema.ts'
import { engineEnv, readJsonField } from './adapter.ts'
import type { EngineAdapter } from './adapter.ts'

/**
 * vLLM's OpenAI server (`vllm serve MODEL`): refuses connections until the model is loaded, then
 * `/health` 200 (503 once its engine died). Served under the pool id, so requests pass through
 * with their `model` unchanged; several GPUs mean tensor parallelism unless `args` say otherwise.
 */
export const vllm: EngineAdapter<RunnableOf<'vllm'>> = {
  kind: 'vllm',
  spawns: () => true,
  command: (pool, { host, port }) => {
    const gpuCount = pool.gpus?.length ?? 0
    const setsParallelism = pool.args.some((a) => a === '--tensor-parallel-size' || a.startsWith('--tensor-parallel-size=') || a === '-tp')
    return {
      file: pool.binary,
      args: [
        'serve',
        pool.model,
        '--host',
        host,
        '--port',
        String(port),
        '--served-model-name',
        pool.id,
        ...(gpuCount > 1 && !setsParallelism ? ['--tensor-parallel-size', String(gpuCount)] : []),
        ...pool.args,
      ],
      env: engineEnv(pool),
    }
  },
  modelName: (pool) => pool.id,
  readVersion: ({ baseUrl, signal }) => readJsonField({ url: `${baseUrl}/version`, field: 'version', signal }),
}
