import type { Context } from 'hono'
import { LlorchError, PoolId } from '../../protocol/index.ts'
import type { Priority } from '../../protocol/index.ts'
import type { AppEnv } from '../env.ts'
import type { AuthVariables } from '../middleware/bearer-auth.ts'
import type { Generation } from '../task/generation.ts'
import { startTask } from '../task/runner.ts'
import type { RunningTask } from '../task/runner.ts'
import { affinityKeyOf } from './affinity-key.ts'

export type InferenceEnv = AppEnv & { Variables: AuthVariables }

function modelNotFound(model: string): LlorchError {
  return new LlorchError('model_not_found', `the model "${model}" does not exist; GET /v1/models lists the served ones`, { param: 'model' })
}

/** Admits a client's request into its pool's queue and places it, as every `/v1` inference route does. */
export async function startInferenceTask(c: Context<InferenceEnv>, { generation, priority }: { generation: Generation; priority: Priority | undefined }): Promise<RunningTask> {
  const { model } = generation.body
  // A name no pool can have is not worth a Durable Object; every other one is the pool's to judge.
  if (!PoolId.safeParse(model).success) throw modelNotFound(model)
  const principal = c.var.principal
  const affinityKey = await affinityKeyOf(c, generation)
  const task = await startTask({
    env: c.env,
    taskId: crypto.randomUUID(),
    poolId: model,
    priority,
    apiKeyId: principal.kind === 'api_key' ? principal.keyId : null,
    ...(principal.kind === 'api_key' ? { keyLimits: principal.limits } : {}),
    ...(affinityKey !== undefined ? { affinityKey } : {}),
    generation,
    requestId: c.var.requestId,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
  }).catch((error: unknown) => {
    throw error instanceof LlorchError && error.code === 'model_not_found' ? modelNotFound(model) : error
  })
  for (const [name, value] of Object.entries(task.rateLimitHeaders)) c.header(name, value)
  return task
}
