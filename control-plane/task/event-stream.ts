import { TaskEvent } from '../../protocol/index.ts'

/**
 * Task events travel from a NodeObject to the Worker as newline-delimited JSON over an RPC
 * stream: one event per line, so no event is split from its kind.
 */
export function encodeTaskEvent(event: TaskEvent): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(event)}\n`)
}

/** Reads events back; a line that does not parse is a bug between our own components and throws. */
export async function* decodeTaskEvents(stream: ReadableStream<Uint8Array>): AsyncGenerator<TaskEvent> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true })
    let newline = buffered.indexOf('\n')
    while (newline !== -1) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.length > 0) yield TaskEvent.parse(JSON.parse(line))
      newline = buffered.indexOf('\n')
    }
  }
}
