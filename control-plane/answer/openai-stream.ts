import { LlorchError } from '../../protocol/index.ts'
import type { ChatCompletion, EmbeddingItem, EmbeddingList, EmbeddingReplyFields, TaskEvent, TextCompletion } from '../../protocol/index.ts'
import type { RunningTask } from '../task/runner.ts'
import type { TaskProgress } from '../task/task-progress.ts'
import type { StreamProgress } from './first-token-wait.ts'
import { CompletionAssembler } from './openai-assembly.ts'
import { StreamShaper, sseEvents } from './openai-chunks.ts'
import type { ResponseIdentity } from './openai-chunks.ts'

const encoder = new TextEncoder()

function errorOf(event: Extract<TaskEvent, { kind: 'error' }>): LlorchError {
  return new LlorchError(event.code, event.message, { retriable: event.retriable })
}

/**
 * A streamed task still queued, or waiting for its first token, this long is answered at once
 * (headers, then a comment line each time it moves or each second it waits), so that proxies and
 * clients see it alive and a client that went away is noticed; an error after that is an error chunk.
 */
export const STREAM_QUEUED_COMMIT_MS = 1_000

/**
 * Reads events until the first output (deltas, end or error), so a task that fails before
 * producing anything is answered with a proper HTTP status rather than a 200 stream; or until the
 * task has waited in the queue `STREAM_QUEUED_COMMIT_MS`, when the stream starts with where it stands.
 */
export async function readUntilFirstOutput(iterator: AsyncIterator<StreamProgress>): Promise<StreamProgress[]> {
  const readingSince = Date.now()
  const seen: StreamProgress[] = []
  for (;;) {
    const next = await iterator.next()
    if (next.done) return seen
    const { kind } = next.value
    if (next.value.kind === 'error') throw errorOf(next.value)
    seen.push(next.value)
    if ((kind === 'queued' || kind === 'waiting') && Date.now() - readingSince >= STREAM_QUEUED_COMMIT_MS) return seen
    if (kind !== 'started' && kind !== 'granted' && kind !== 'queued' && kind !== 'waiting') return seen
  }
}

/** An SSE comment line (ignored by clients) saying where a queued task stands. */
function queuedComment({ standing }: Extract<TaskProgress, { kind: 'queued' }>): Uint8Array {
  const loading = standing.loading ? ` loading=${standing.loading.reason} node=${standing.loading.nodeId}` : ''
  return encoder.encode(`: queued position=${standing.position} predicted_start_ms=${standing.predictedStartMs}${loading}\n\n`)
}

export interface StreamOptions {
  identity: ResponseIdentity
  task: RunningTask
  iterator: AsyncIterator<StreamProgress>
  /** Events already read by `readUntilFirstOutput`. */
  first: StreamProgress[]
  includeUsage: boolean
}

/**
 * OpenAI's streaming format: the engine's chunks as it sent them (see `StreamShaper`), usage when
 * asked, then `[DONE]`. An error after the first output ends the stream with an `error` event; a
 * client that goes away cancels the task on its node.
 */
export function sseStream({ identity, task, iterator, first, includeUsage }: StreamOptions): ReadableStream<Uint8Array> {
  const pending = [...first]
  const shaper = new StreamShaper(identity, { includeUsage })
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A pull that enqueues nothing is not called again: events with nothing to send are skipped here.
      for (;;) {
        let next: StreamProgress | undefined
        try {
          next = pending.shift() ?? (await iterator.next()).value
        } catch (error) {
          // Refused after the stream began (the wait deadline passed while queued).
          if (!(error instanceof LlorchError)) throw error
          next = { kind: 'error', code: error.code, message: error.message, retriable: error.retriable }
        }
        if (!next) return controller.close()
        switch (next.kind) {
          case 'queued':
            return controller.enqueue(queuedComment(next))
          case 'waiting':
            return controller.enqueue(encoder.encode(`: waiting for the first token waited_ms=${next.waitedMs}\n\n`))
          case 'started':
          case 'granted':
          case 'embeddings':
            continue
          case 'deltas':
            return controller.enqueue(sseEvents(shaper.shape(next.chunks)))
          case 'end':
            controller.enqueue(sseEvents(shaper.finish(next.usage)))
            controller.enqueue(encoder.encode('data: [DONE]\n\n'))
            return controller.close()
          case 'error':
            controller.enqueue(sseEvents([errorOf(next).toOpenAI()]))
            return controller.close()
        }
      }
    },
    async cancel() {
      await task.cancel()
      await iterator.return?.()
    },
  })
}

/** Reads the whole task into one JSON object, as `stream: false` asks; `onOutput` runs at each batch of output. */
export async function collectCompletion(
  identity: ResponseIdentity,
  iterator: AsyncIterator<TaskProgress>,
  onOutput: () => void = () => {},
): Promise<ChatCompletion | TextCompletion> {
  const assembler = new CompletionAssembler()
  for (;;) {
    const next = await iterator.next()
    if (next.done) throw new LlorchError('node_lost', 'the task ended without a result')
    const event = next.value
    if (event.kind === 'deltas') {
      onOutput()
      assembler.add(event.chunks)
    }
    if (event.kind === 'error') throw errorOf(event)
    if (event.kind === 'end') return identity.endpoint === 'chat' ? assembler.chat(identity, event.usage) : assembler.text(identity, event.usage)
  }
}

/** Reads an embeddings task: the engine's reply, its vectors in order, with llorch's model name and usage. */
export async function collectEmbeddings(model: string, iterator: AsyncIterator<TaskProgress>, onOutput: () => void = () => {}): Promise<EmbeddingList> {
  const data: EmbeddingItem[] = []
  let reply: EmbeddingReplyFields = {}
  for (;;) {
    const next = await iterator.next()
    if (next.done) throw new LlorchError('node_lost', 'the task ended without a result')
    const event = next.value
    if (event.kind === 'embeddings') {
      onOutput()
      for (const item of event.data) data.push(item)
      if (event.reply) reply = event.reply
    }
    if (event.kind === 'error') throw errorOf(event)
    if (event.kind === 'end') {
      const usage = reply.usage ?? { prompt_tokens: event.usage?.prompt_tokens ?? 0, total_tokens: event.usage?.total_tokens ?? 0 }
      return { ...reply, object: 'list', data, model, usage }
    }
  }
}
