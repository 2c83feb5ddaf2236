import type { Context } from 'hono'
import { LlorchError } from '../../protocol/index.ts'
import { logError } from '../runtime/log.ts'
import type { RunningTask } from '../task/runner.ts'
import { setRateLimitHeaders } from './inference-task.ts'
import type { InferenceEnv } from './inference-task.ts'

/** A non-streamed reply still unfinished this long after its first output is committed as a 200 and kept alive. */
export const WHOLE_REPLY_COMMIT_MS = 200
/** While a committed reply is unfinished, a space (JSON allows leading whitespace) is written this often. */
export const WHOLE_REPLY_KEEPALIVE_MS = 100

/**
 * Runs `work` and cancels the task if the client goes away meanwhile, as the request's signal
 * tells where the runtime reports it (the `enable_request_signal` compatibility flag; local
 * workerd does not). Streams need no such care once returned: their cancel does it.
 */
export async function whileClientWaits<T>(c: Context<InferenceEnv>, task: RunningTask, work: () => Promise<T>): Promise<T> {
  const signal = c.req.raw.signal
  const cancel = () => c.executionCtx.waitUntil(task.cancel())
  if (signal.aborted) cancel()
  else signal.addEventListener('abort', cancel, { once: true })
  try {
    return await work()
  } finally {
    signal.removeEventListener('abort', cancel)
  }
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown }

const sleep = (ms: number) => new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))
const SPACE = new TextEncoder().encode(' ')

/** The error a committed reply ends with; anything but a `LlorchError` is a bug, logged and not shown. */
function lateError(task: RunningTask, error: unknown): LlorchError {
  if (error instanceof LlorchError) return error
  logError('task.whole_reply_failed', { task: task.taskId, error: String(error) })
  return new LlorchError('internal_error', `internal error (task ${task.taskId})`)
}

/**
 * Answers a non-streamed request with the JSON that `collect` builds. A reply that fails or
 * finishes soon after its first output is answered as usual, with its HTTP status. One that
 * takes longer is committed as a 200 and kept alive with a space every
 * `WHOLE_REPLY_KEEPALIVE_MS` until it is done: a client that went away makes those writes fail,
 * which cancels the task within a second on any runtime. A failure after that point is the
 * OpenAI error object in the body.
 */
export async function answerWhole(c: Context<InferenceEnv>, task: RunningTask, collect: (onOutput: () => void) => Promise<unknown>): Promise<Response> {
  let outputSeen: () => void = () => {}
  const output = new Promise<void>((resolve) => (outputSeen = resolve))
  const settled: Promise<Settled> = whileClientWaits(c, task, () => collect(outputSeen)).then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  )
  const early = await Promise.race([settled, output.then(() => sleep(WHOLE_REPLY_COMMIT_MS))])
  // Output or an answer came: admission is done.
  setRateLimitHeaders(c, task)
  if (early !== null) {
    if (early.ok) return c.json(early.value)
    throw early.error
  }
  let done = false
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return
      const next = await Promise.race([settled, sleep(WHOLE_REPLY_KEEPALIVE_MS)])
      if (next === null) return controller.enqueue(SPACE)
      done = true
      controller.enqueue(new TextEncoder().encode(JSON.stringify(next.ok ? next.value : lateError(task, next.error).toOpenAI())))
      controller.close()
    },
    async cancel() {
      await task.cancel()
    },
  })
  return c.body(body, 200, { 'Content-Type': 'application/json' })
}
