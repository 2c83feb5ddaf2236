import { LlorchError, TaskDeltas, describeIssues } from '../../protocol/index.ts'
import type { TaskEvent, Usage } from '../../protocol/index.ts'
import { REWRITTEN_CHUNK_FIELDS, isRawChunk, isRecord } from './chunk-merge.ts'
import type { RawChunk } from './chunk-merge.ts'
import { engineStreamError } from './engine-http-error.ts'

/** One engine data line longer than this ends the task: it could not travel in one frame. */
export const MAX_ENGINE_CHUNK_BYTES = 1024 * 1024

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0

/** The engine's usage in the end event's strict shape, or null when it sent something else. */
export function usageOf(value: unknown): Usage | null {
  if (!isRecord(value)) return null
  const { prompt_tokens, completion_tokens, total_tokens } = value
  return isCount(prompt_tokens) && isCount(completion_tokens) && isCount(total_tokens) ? { prompt_tokens, completion_tokens, total_tokens } : null
}

/**
 * Checks a data line as cheaply as batching allows (the full schema runs once per batch) and
 * returns the chunk, or the error that ends the task.
 */
export function readChunk(data: string, pool: string): RawChunk | LlorchError {
  if (data.length > MAX_ENGINE_CHUNK_BYTES)
    return new LlorchError('engine_error', `engine of pool "${pool}" sent a chunk of ${data.length} bytes; at most ${MAX_ENGINE_CHUNK_BYTES} are relayed`)
  let json: unknown
  try {
    json = JSON.parse(data)
  } catch {
    return new LlorchError('engine_error', `engine of pool "${pool}" sent a data line that is not JSON`)
  }
  if (!isRecord(json)) return new LlorchError('engine_error', `engine of pool "${pool}" sent a chunk of unexpected shape`)
  if (json.error !== undefined && json.error !== null) return engineStreamError({ pool, payload: data })
  if (!isRawChunk(json))
    return new LlorchError('engine_error', `engine of pool "${pool}" sent a chunk of unexpected shape: choices must be objects with an integer index`)
  return json
}

/** The batch as the protocol carries it: identity fields dropped (the Worker writes its own), then checked whole. */
export function deltasEvent(chunks: RawChunk[], seq: number, pool: string): TaskEvent | LlorchError {
  for (const chunk of chunks) for (const field of REWRITTEN_CHUNK_FIELDS) delete chunk[field]
  const parsed = TaskDeltas.safeParse({ kind: 'deltas', seq, chunks })
  if (parsed.success) return parsed.data
  return new LlorchError('engine_error', `engine of pool "${pool}" sent a chunk the relay cannot carry: ${describeIssues(parsed.error.issues)}`)
}
