import type { NativeTaskEvent } from '../../protocol/index.ts'
import type { TaskProgress } from '../task/task-progress.ts'

const encoder = new TextEncoder()

/** One SSE event; `id` is left out for events that are not part of the task's log (a replaced reader's notice). */
export function encodeSseEvent(event: NativeTaskEvent, id?: number): Uint8Array {
  const idLine = id === undefined ? '' : `id: ${id}\n`
  return encoder.encode(`${idLine}event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`)
}

export const SSE_KEEPALIVE = encoder.encode(': keepalive\n\n')

/** What a task's timeline needs from the object that runs it. */
export interface TaskTimes {
  createdAt: number
  startedAt: number | null
  firstTokenAt: number | null
}

/**
 * Turns what the runner yields into the native API's events: `queued` and `loading` only when
 * they say something new, `started` once the engine took the task, one `token` per batch of
 * engine chunks, and `metrics` before `end`.
 */
export class NativeEventMapper {
  #lastQueued = ''
  #lastLoading = ''
  #placed: { nodeId: string; attempt: number } | null = null

  map(progress: TaskProgress, times: TaskTimes, now: number): NativeTaskEvent[] {
    switch (progress.kind) {
      case 'queued': {
        const out: NativeTaskEvent[] = []
        const { position, predictedStartMs, loading } = progress.standing
        const queued = `${position}:${predictedStartMs}`
        if (queued !== this.#lastQueued) out.push({ event: 'queued', data: { position, predicted_start_ms: predictedStartMs } })
        this.#lastQueued = queued
        const loadingKey = loading ? `${loading.reason}:${loading.nodeId}` : ''
        if (loading && loadingKey !== this.#lastLoading) {
          out.push({
            event: 'loading',
            data: { reason: loading.reason, node_id: loading.nodeId, message: loading.message, ...(loading.download ? { download: loading.download } : {}) },
          })
        }
        this.#lastLoading = loadingKey
        return out
      }
      case 'granted':
        this.#placed = { nodeId: progress.nodeId, attempt: progress.attempt }
        this.#lastQueued = ''
        this.#lastLoading = ''
        return []
      case 'started':
        return [
          {
            event: 'started',
            data: { node_id: this.#placed?.nodeId ?? '', attempt: this.#placed?.attempt ?? 1, queue_wait_ms: since(times.createdAt, times.startedAt ?? now) },
          },
        ]
      case 'deltas': {
        const choices = progress.chunks.flatMap((chunk) => chunk.choices)
        return choices.length > 0 ? [{ event: 'token', data: { choices } }] : []
      }
      case 'embeddings':
        return []
      case 'end': {
        const completionTokens = progress.usage?.completion_tokens ?? null
        const generatingMs = times.firstTokenAt === null ? null : now - times.firstTokenAt
        const tokensPerSecond =
          completionTokens !== null && generatingMs !== null && generatingMs > 0 ? Math.round((completionTokens / generatingMs) * 10_000) / 10 : null
        return [
          {
            event: 'metrics',
            data: {
              queue_wait_ms: times.startedAt === null ? null : since(times.createdAt, times.startedAt),
              ttft_ms: times.firstTokenAt === null ? null : since(times.createdAt, times.firstTokenAt),
              tokens_per_second: tokensPerSecond,
              completion_tokens: completionTokens,
            },
          },
          { event: 'end', data: { finish_reason: progress.finish_reason, usage: progress.usage } },
        ]
      }
      case 'error':
        return [{ event: 'error', data: { code: progress.code, message: progress.message, retriable: progress.retriable } }]
    }
  }
}

function since(from: number, to: number): number {
  return Math.max(0, Math.round(to - from))
}
