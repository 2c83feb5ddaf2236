import type { TaskEvent } from '../../protocol/index.ts'

const encoder = new TextEncoder()

/**
 * Task events travel from a NodeObject to the Worker as newline-delimited JSON over an RPC
 * stream: one event per line, so no event is split from its kind.
 */
export function encodeTaskEvent(event: TaskEvent): Uint8Array {
  return encoder.encode(`${JSON.stringify(event)}\n`)
}

/**
 * Reads events back. They were validated when they came off the agent's socket and crossed only
 * our own RPC boundary since, so they are not parsed against the schema again.
 */
export async function* decodeTaskEvents(stream: ReadableStream<Uint8Array>): AsyncGenerator<TaskEvent> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true })
    let newline = buffered.indexOf('\n')
    while (newline !== -1) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.length > 0) {
        const event: TaskEvent = JSON.parse(line)
        yield event
      }
      newline = buffered.indexOf('\n')
    }
  }
}

/** Whether the event carries engine output the client will see: after it, a task can no longer move invisibly. */
export function carriesOutput(event: TaskEvent): boolean {
  return event.kind === 'deltas' || event.kind === 'embeddings'
}
