import { Hono } from 'hono'
import type { Context } from 'hono'
import { z } from 'zod'
import { CreateChatTask, CreateCompletionTask, LlorchError, TASK_ATTACH_TIMEOUT_MS, refusalError, taskEndpointOf } from '../../protocol/index.ts'
import type { CancelTaskResponse, CreateTaskResponse, KeyLimits } from '../../protocol/index.ts'
import { parseInput, readJson } from '../middleware/validate-json.ts'
import type { TaskSpec } from '../native-task/task-spec.ts'
import { affinityKeyOf, answerTaskEvents, assertKnownModel } from '../answer/answer-task.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'

const TaskIdParam = z.uuid()
/** `Last-Event-ID` as EventSource sends it on reconnect (or as curl is told to): the last id the reader got. */
const LastEventId = z
  .string()
  .regex(/^\d{1,15}$/, 'must be the id of an event of this task')
  .transform(Number)

type TaskBody = Pick<TaskSpec, 'priority' | 'generation'> & { attachWithinMs: number | undefined }

/** llorch's own fields come off here, once, so that the engine never sees them. */
function chatTask(json: unknown): TaskBody {
  const { priority, attach_within_ms, endpoint: _route, ...body } = parseInput(CreateChatTask, json, 'request body')
  return { priority, attachWithinMs: attach_within_ms, generation: { endpoint: 'chat', body } }
}

function completionTask(json: unknown): TaskBody {
  const { priority, attach_within_ms, endpoint: _route, ...body } = parseInput(CreateCompletionTask, json, 'request body')
  return { priority, attachWithinMs: attach_within_ms, generation: { endpoint: 'completions', body } }
}

/** The body of `POST /v2/tasks`: chat or completions, by its `endpoint` field or its shape. */
async function readTaskSpec(c: Context<InferenceEnv>, taskId: string, key: { keyId: string; limits: KeyLimits }): Promise<TaskSpec> {
  const json = await readJson(c, z.unknown())
  const endpoint = taskEndpointOf(json)
  if (!endpoint) {
    throw new LlorchError(
      'invalid_request',
      'invalid request body: `endpoint` must be "chat" or "completions", or the body must have `messages` (chat) or `prompt` (completions)',
      { param: 'endpoint' },
    )
  }
  const { priority, attachWithinMs, generation } = endpoint === 'chat' ? chatTask(json) : completionTask(json)
  return {
    taskId,
    poolId: generation.body.model,
    apiKeyId: key.keyId,
    keyLimits: key.limits,
    affinityKey: await affinityKeyOf(c, generation),
    priority,
    attachWithinMs: attachWithinMs ?? TASK_ATTACH_TIMEOUT_MS,
    generation,
    requestId: c.var.requestId ?? null,
  }
}

function taskOf(c: Context<InferenceEnv>) {
  const id = c.req.param('id') ?? ''
  if (!TaskIdParam.safeParse(id).success) throw new LlorchError('not_found', `no task "${id}" for this API key`)
  return { id, stub: c.env.TASKS.getByName(id) }
}

function keyOf(c: Context<InferenceEnv>): { keyId: string; limits: KeyLimits } {
  const principal = c.var.principal
  if (principal.kind !== 'api_key') throw new LlorchError('unauthorized', '/v2/tasks takes an API key with the `inference` scope')
  return principal
}

/**
 * The native task API: create a task (202, its place in the queue), read its events as SSE
 * (resumable with `Last-Event-ID`), see it, cancel it. Only the key that created a task sees it.
 */
export const taskRoutes = new Hono<InferenceEnv>()
  .post('/', async (c) => {
    const taskId = crypto.randomUUID()
    const spec = await readTaskSpec(c, taskId, keyOf(c))
    await assertKnownModel(c.var.registry(), spec.poolId)
    const created = await c.env.TASKS.getByName(taskId).create(spec)
    if (!created.ok) throw refusalError(created)
    const body: CreateTaskResponse = {
      task_id: taskId,
      queue_position: created.standing.position,
      predicted_start_ms: created.standing.predictedStartMs,
      events_url: `/v2/tasks/${taskId}/events`,
      attach_by: new Date(created.attachBy).toISOString(),
    }
    return c.json(body, 202, { Location: `/v2/tasks/${taskId}`, ...created.rateLimitHeaders })
  })
  .get('/:id/events', async (c) => {
    const apiKeyId = keyOf(c).keyId
    const { stub } = taskOf(c)
    const header = c.req.header('Last-Event-ID')
    const lastEventId = header === undefined || header === '' ? 0 : parseInput(LastEventId, header, 'Last-Event-ID header')
    const attached = await stub.attach({ apiKeyId, lastEventId })
    if (!attached.ok) throw refusalError(attached)
    return answerTaskEvents(c, attached.stream)
  })
  .post('/:id/cancel', async (c) => {
    const apiKeyId = keyOf(c).keyId
    const { id, stub } = taskOf(c)
    const cancelled = await stub.cancel({ apiKeyId })
    if (!cancelled.ok) throw refusalError(cancelled)
    const body: CancelTaskResponse = { task_id: id, state: cancelled.value }
    return c.json(body)
  })
  .get('/:id', async (c) => {
    const apiKeyId = keyOf(c).keyId
    const { stub } = taskOf(c)
    const viewed = await stub.view({ apiKeyId })
    if (!viewed.ok) throw refusalError(viewed)
    return c.json(viewed.value)
  })
