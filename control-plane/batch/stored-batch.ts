import { z } from 'zod'
import { BatchEndpoint, BatchError, BatchLineCounts, BatchLineOutcome, BatchMetadata, BatchStatus, KeyLimits, NO_BATCH_LINES } from '../../protocol/index.ts'
import type { OpenAIBatch } from '../../protocol/index.ts'
import type { BatchSpec } from './batch-calls.ts'

/** What a batch's object keeps of it beside its lines: enough to answer `GET /v1/batches/{id}` and to go on after a restart. */
export const StoredBatch = z.object({
  id: z.string(),
  apiKeyId: z.string(),
  /** The key's own limits when the batch was made; its lines count against them. */
  keyLimits: KeyLimits,
  endpoint: BatchEndpoint,
  inputFileId: z.string(),
  /** The models served when the batch was made: its lines are checked against them, after a restart too. */
  knownModels: z.array(z.string()),
  model: z.string().nullable(),
  metadata: BatchMetadata.nullable(),
  status: BatchStatus,
  errors: z.array(BatchError),
  outputFileId: z.string().nullable(),
  errorFileId: z.string().nullable(),
  createdAt: z.number(),
  expiresAt: z.number(),
  inProgressAt: z.number().nullable(),
  finalizingAt: z.number().nullable(),
  completedAt: z.number().nullable(),
  failedAt: z.number().nullable(),
  expiredAt: z.number().nullable(),
  cancellingAt: z.number().nullable(),
  cancelledAt: z.number().nullable(),
  total: z.int().nonnegative(),
  completed: z.int().nonnegative(),
  failed: z.int().nonnegative(),
  inputTokens: z.int().nonnegative(),
  outputTokens: z.int().nonnegative(),
  /** Runs that failed and ran again, and lines never finished (cancel, expiry): counted for `/metrics` only. */
  retried: z.int().nonnegative(),
  unrun: z.int().nonnegative(),
  /** The line counts the fleet's count (`/metrics`) has of this batch already. */
  reported: BatchLineCounts,
})
export type StoredBatch = z.infer<typeof StoredBatch>

/** A batch as it begins, validating its input file; its window ends `windowMs` after `now`. */
export function newBatch(
  spec: Pick<BatchSpec, 'batchId' | 'apiKeyId' | 'keyLimits' | 'endpoint' | 'inputFileId' | 'metadata' | 'knownModels'>,
  { now, windowMs }: { now: number; windowMs: number },
): StoredBatch {
  return {
    id: spec.batchId,
    apiKeyId: spec.apiKeyId,
    keyLimits: spec.keyLimits,
    endpoint: spec.endpoint,
    inputFileId: spec.inputFileId,
    knownModels: spec.knownModels,
    model: null,
    metadata: spec.metadata,
    status: 'validating',
    errors: [],
    outputFileId: null,
    errorFileId: null,
    createdAt: now,
    expiresAt: now + windowMs,
    inProgressAt: null,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancellingAt: null,
    cancelledAt: null,
    total: 0,
    completed: 0,
    failed: 0,
    inputTokens: 0,
    outputTokens: 0,
    retried: 0,
    unrun: 0,
    reported: { ...NO_BATCH_LINES },
  }
}

export function lineCountsOf(batch: StoredBatch): BatchLineCounts {
  return { completed: batch.completed, failed: batch.failed, retried: batch.retried, unrun: batch.unrun }
}

/** What `counts` adds to what was reported already; null when nothing. */
export function unreported(counts: BatchLineCounts, reported: BatchLineCounts): BatchLineCounts | null {
  const delta = { ...NO_BATCH_LINES }
  let any = false
  for (const outcome of BatchLineOutcome.options) {
    delta[outcome] = counts[outcome] - reported[outcome]
    if (delta[outcome] !== 0) any = true
  }
  return any ? delta : null
}

/** The final states: nothing runs or changes any more. */
export function isBatchOver(status: BatchStatus): boolean {
  return status === 'failed' || status === 'completed' || status === 'expired' || status === 'cancelled'
}

/**
 * When the lines still to run should be done, at the rate lines finished since the batch began
 * running; null until one finished, and once nothing is left to run.
 */
export function predictedCompletionAt(batch: StoredBatch, now: number): number | null {
  const finished = batch.completed + batch.failed
  if (batch.status !== 'in_progress' || batch.inProgressAt === null || finished === 0 || finished >= batch.total) return null
  const msPerLine = (now - batch.inProgressAt) / finished
  return now + Math.round(msPerLine * (batch.total - finished))
}

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000))

export function batchView(batch: StoredBatch, now: number): OpenAIBatch {
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    model: batch.model,
    errors: batch.errors.length > 0 ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: '24h',
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: Math.floor(batch.createdAt / 1000),
    in_progress_at: seconds(batch.inProgressAt),
    expires_at: seconds(batch.expiresAt),
    finalizing_at: seconds(batch.finalizingAt),
    completed_at: seconds(batch.completedAt),
    failed_at: seconds(batch.failedAt),
    expired_at: seconds(batch.expiredAt),
    cancelling_at: seconds(batch.cancellingAt),
    cancelled_at: seconds(batch.cancelledAt),
    request_counts: { total: batch.total, completed: batch.completed, failed: batch.failed },
    usage: {
      input_tokens: batch.inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: batch.outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: batch.inputTokens + batch.outputTokens,
    },
    metadata: batch.metadata,
    llorch_predicted_completion_at: seconds(predictedCompletionAt(batch, now)),
  }
}

/** The time field each status sets when the batch enters it. */
export const ENTERED_AT = {
  validating: null,
  in_progress: 'inProgressAt',
  finalizing: 'finalizingAt',
  completed: 'completedAt',
  failed: 'failedAt',
  expired: 'expiredAt',
  cancelling: 'cancellingAt',
  cancelled: 'cancelledAt',
} as const satisfies Record<BatchStatus, keyof StoredBatch | null>
