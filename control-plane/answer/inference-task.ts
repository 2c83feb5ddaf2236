import type { Context } from 'hono'
import { LlorchError, PoolId } from '../../protocol/index.ts'
import type { Priority } from '../../protocol/index.ts'
import type { Registry } from '../../db/client.ts'
import { PoolNames } from '../registry/pool-names.ts'
import { listPools } from '../registry/pools.ts'
import type { AppEnv } from '../runtime/env.ts'
import type { AuthVariables } from '../middleware/bearer-auth.ts'
import type { Generation } from '../task/generation.ts'
import { startTask } from '../task/runner.ts'
import type { RunningTask } from '../task/runner.ts'
import { affinityKeyOf } from './affinity-key.ts'

export type InferenceEnv = AppEnv & { Variables: AuthVariables }

/** A model name no pool has: 404 naming the field, as every inference route answers it. */
export function modelNotFound(model: string): LlorchError {
  return new LlorchError('model_not_found', `the model "${model}" does not exist; GET /v1/models lists the served ones`, { param: 'model' })
}

/** What this isolate knows of the registry's pool names. */
const poolNames = new PoolNames()

/**
 * Refuses a model name no pool has without a Durable Object for it: one that no pool can be
 * named, or that the registry's pool list (as this isolate read it) lacks. When the registry
 * cannot say, the pool's own object judges (it keeps its policy through a registry outage).
 */
export async function assertKnownModel(registry: Registry, model: string): Promise<void> {
  if (!PoolId.safeParse(model).success) throw modelNotFound(model)
  const readIds = async () => (await listPools(registry)).map((pool) => pool.id)
  if ((await poolNames.lookup(model, readIds, Date.now())) === 'unknown') throw modelNotFound(model)
}

/**
 * Starts a client's request as a task in its pool, as every `/v1` inference route does: it is
 * admitted and placed as its events are read. A streamed one shows where it waits in the queue.
 */
export async function startInferenceTask(
  c: Context<InferenceEnv>,
  { generation, priority, queueUpdates }: { generation: Generation; priority: Priority | undefined; queueUpdates: boolean },
): Promise<RunningTask> {
  const { model } = generation.body
  if (!PoolId.safeParse(model).success) throw modelNotFound(model)
  // The request's own fields are checked before its model is looked up: a bad header is a 400 whatever the model.
  const affinityKey = await affinityKeyOf(c, generation)
  await assertKnownModel(c.var.registry(), model)
  const principal = c.var.principal
  return startTask({
    env: c.env,
    taskId: crypto.randomUUID(),
    poolId: model,
    priority,
    apiKeyId: principal.kind === 'api_key' ? principal.keyId : null,
    ...(principal.kind === 'api_key' ? { keyLimits: principal.limits } : {}),
    ...(affinityKey !== undefined ? { affinityKey } : {}),
    generation,
    requestId: c.var.requestId,
    queueUpdates,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
  })
}

/** The key's `x-ratelimit-*` state, on a response made once the task was admitted. */
export function setRateLimitHeaders(c: Context<InferenceEnv>, task: RunningTask): void {
  for (const [name, value] of Object.entries(task.rateLimitHeaders)) c.header(name, value)
}
