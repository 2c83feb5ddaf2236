/** The native task API from a client's side: create tasks, read their SSE events as they come, resume. */
import { EventSourceParserStream } from 'eventsource-parser/stream'
import { NativeTaskEvent } from '../../protocol/index.ts'
import type { Stack } from './local-stack.ts'

export interface ReceivedEvent {
  /** Null for events outside the task's log (a replaced reader's notice). */
  id: number | null
  event: NativeTaskEvent
}

export function taskCall(
  stack: Stack,
  key: string,
  method: string,
  path: string,
  { body, headers = {}, signal }: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(new URL(path, stack.url), {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(signal ? { signal } : {}),
  })
}

/** `POST /v2/tasks` with a one-message chat for `model`. */
export async function createTask(stack: Stack, key: string, body: Record<string, unknown>): Promise<Response> {
  return taskCall(stack, key, 'POST', '/v2/tasks', { body: { messages: [{ role: 'user', content: 'hi' }], ...body } })
}

/** An open events stream: its events one by one, validated against the protocol's schema. */
export interface EventReader {
  response: Response
  next(): Promise<ReceivedEvent | null>
  /** Reads to the end of the stream. */
  rest(): Promise<ReceivedEvent[]>
  /** Drops the connection, as a client whose network went away. */
  abort(): void
}

export async function openEvents(stack: Stack, key: string, taskId: string, lastEventId?: number): Promise<EventReader> {
  const controller = new AbortController()
  const response = await taskCall(stack, key, 'GET', `/v2/tasks/${taskId}/events`, {
    headers: lastEventId === undefined ? {} : { 'Last-Event-ID': String(lastEventId) },
    signal: controller.signal,
  })
  const body = response.body
  const messages = body?.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader()
  const next = async (): Promise<ReceivedEvent | null> => {
    if (!messages) return null
    const read = await messages.read().catch(() => ({ done: true as const, value: undefined }))
    if (read.done) return null
    const message = read.value
    return { id: message.id === undefined ? null : Number(message.id), event: NativeTaskEvent.parse({ event: message.event, data: JSON.parse(message.data) }) }
  }
  return {
    response,
    next,
    async rest() {
      const events: ReceivedEvent[] = []
      for (let event = await next(); event; event = await next()) events.push(event)
      return events
    },
    abort: () => controller.abort(),
  }
}

/** The text the `token` events carry for choice 0, in order. */
export function tokenText(events: readonly ReceivedEvent[]): string {
  return events
    .flatMap(({ event }) => (event.event === 'token' ? event.data.choices : []))
    .filter((choice) => choice.index === 0)
    .map((choice) => choice.delta?.content ?? choice.text ?? '')
    .join('')
}
