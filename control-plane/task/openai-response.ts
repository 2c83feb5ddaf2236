import { LlorchError } from '../../protocol/index.ts'
import type { TaskEvent, Usage } from '../../protocol/index.ts'
import type { RunningTask } from './runner.ts'
import { completionObject, roleChunk, textChunk, usageChunk } from './openai-chunks.ts'
import type { ResponseIdentity } from './openai-chunks.ts'

const encoder = new TextEncoder()

function sseData(value: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(value)}\n\n`)
}

function errorOf(event: Extract<TaskEvent, { kind: 'error' }>): LlorchError {
  return new LlorchError(event.code, event.message, { retriable: event.retriable })
}

const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }

/**
 * Reads events until the first output (tokens, end or error), so a task that fails before
 * producing anything is answered with a proper HTTP status rather than a 200 stream.
 */
export async function readUntilFirstOutput(iterator: AsyncIterator<TaskEvent>): Promise<TaskEvent[]> {
  const seen: TaskEvent[] = []
  for (;;) {
    const next = await iterator.next()
    if (next.done) return seen
    if (next.value.kind === 'error') throw errorOf(next.value)
    seen.push(next.value)
    if (next.value.kind !== 'started') return seen
  }
}

export interface StreamOptions {
  identity: ResponseIdentity
  task: RunningTask
  iterator: AsyncIterator<TaskEvent>
  /** Events already read by `readUntilFirstOutput`. */
  first: TaskEvent[]
  includeUsage: boolean
}

/**
 * OpenAI's streaming format: role first (chat), a chunk per token batch, the finish reason,
 * usage when asked, then `[DONE]`. An error after the first token ends the stream with an
 * `error` event; a client that goes away cancels the task on its node.
 */
export function sseStream({ identity, task, iterator, first, includeUsage }: StreamOptions): ReadableStream<Uint8Array> {
  const pending = [...first]
  let sentRole = false
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = pending.shift() ?? (await iterator.next()).value
      if (!next) {
        controller.close()
        return
      }
      if (identity.endpoint === 'chat' && !sentRole) {
        sentRole = true
        controller.enqueue(sseData(roleChunk(identity)))
      }
      switch (next.kind) {
        case 'started':
          return
        case 'tokens':
          controller.enqueue(sseData(textChunk(identity, next.text)))
          return
        case 'end':
          controller.enqueue(sseData(textChunk(identity, '', next.finish_reason ?? 'stop')))
          if (includeUsage) controller.enqueue(sseData(usageChunk(identity, next.usage ?? ZERO_USAGE)))
          controller.enqueue(encoder.encode('data: [DONE]\n\n'))
          controller.close()
          return
        case 'error':
          controller.enqueue(sseData(errorOf(next).toOpenAI()))
          controller.close()
          return
      }
    },
    async cancel() {
      await task.cancel()
      await iterator.return?.()
    },
  })
}

/** Reads the whole task and answers with one JSON object, as `stream: false` asks. */
export async function collectCompletion(identity: ResponseIdentity, iterator: AsyncIterator<TaskEvent>) {
  let text = ''
  for (;;) {
    const next = await iterator.next()
    if (next.done) throw new LlorchError('node_lost', 'the task ended without a result')
    const event = next.value
    if (event.kind === 'tokens') text += event.text
    if (event.kind === 'error') throw errorOf(event)
    if (event.kind === 'end') {
      const usage = event.usage ?? ZERO_USAGE
      return completionObject(identity, text, event.finish_reason ?? 'stop', usage)
    }
  }
}
