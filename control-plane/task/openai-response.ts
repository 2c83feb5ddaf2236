import { LlorchError } from '../../protocol/index.ts'
import type { ChatCompletion, EmbeddingItem, EmbeddingList, EmbeddingReplyFields, TaskEvent, TextCompletion } from '../../protocol/index.ts'
import type { RunningTask } from './runner.ts'
import { CompletionAssembler } from './openai-assembly.ts'
import { StreamShaper, sseEvents } from './openai-chunks.ts'
import type { ResponseIdentity } from './openai-chunks.ts'

const encoder = new TextEncoder()

function errorOf(event: Extract<TaskEvent, { kind: 'error' }>): LlorchError {
  return new LlorchError(event.code, event.message, { retriable: event.retriable })
}

/**
 * Reads events until the first output (deltas, end or error), so a task that fails before
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
 * OpenAI's streaming format: the engine's chunks as it sent them (see `StreamShaper`), usage when
 * asked, then `[DONE]`. An error after the first output ends the stream with an `error` event; a
 * client that goes away cancels the task on its node.
 */
export function sseStream({ identity, task, iterator, first, includeUsage }: StreamOptions): ReadableStream<Uint8Array> {
  const pending = [...first]
  const shaper = new StreamShaper(identity, { includeUsage })
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = pending.shift() ?? (await iterator.next()).value
      if (!next) {
        controller.close()
        return
      }
      switch (next.kind) {
        case 'started':
        case 'embeddings':
          return
        case 'deltas':
          controller.enqueue(sseEvents(shaper.shape(next.chunks)))
          return
        case 'end':
          controller.enqueue(sseEvents(shaper.finish(next.usage)))
          controller.enqueue(encoder.encode('data: [DONE]\n\n'))
          controller.close()
          return
        case 'error':
          controller.enqueue(sseEvents([errorOf(next).toOpenAI()]))
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

/** Reads the whole task into one JSON object, as `stream: false` asks; `onOutput` runs at each batch of output. */
export async function collectCompletion(identity: ResponseIdentity, iterator: AsyncIterator<TaskEvent>, onOutput: () => void = () => {}): Promise<ChatCompletion | TextCompletion> {
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
export async function collectEmbeddings(model: string, iterator: AsyncIterator<TaskEvent>, onOutput: () => void = () => {}): Promise<EmbeddingList> {
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
