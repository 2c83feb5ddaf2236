import { z } from 'zod'
import { ErrorCode } from './errors.ts'
import { FileId, ListQuery, listOf } from './files.ts'
import type { TaskEndpoint } from './openai.ts'

/** A line whose task fails before its output is stored runs at most this many times, then goes to the error file. */
export const BATCH_LINE_MAX_ATTEMPTS = 3
/**
 * The one completion window OpenAI offers (`completion_window: "24h"`); past it the batch ends
 * `expired` with what finished. The default of the Worker setting of the same name, which sets
 * `expires_at`.
 */
export const BATCH_COMPLETION_WINDOW_MS = 24 * 3_600_000
/** Longest input line: a line is one row of its batch's storage, whose rows hold at most 2 MB. */
export const BATCH_LINE_MAX_BYTES = 1024 * 1024
/** Most validation errors a failed batch lists; the first ones, by line. */
export const BATCH_MAX_REPORTED_ERRORS = 100
/** Most `metadata` pairs, and the longest key and value, as OpenAI allows. */
export const BATCH_METADATA_MAX_PAIRS = 16
const METADATA_KEY_MAX_CHARS = 64
const METADATA_VALUE_MAX_CHARS = 512

/** A batch id as llorch makes them: `batch_` and 24 hex digits; any other is no batch's. */
export const BatchId = z.string().regex(/^batch_[0-9a-f]{24}$/)

/** The routes a batch can run, each the `url` of its lines. */
export const BatchEndpoint = z.enum(['/v1/chat/completions', '/v1/completions', '/v1/embeddings'])
export type BatchEndpoint = z.infer<typeof BatchEndpoint>

/** The task endpoint each batch route runs as. */
export const BATCH_TASK_ENDPOINTS = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
} as const satisfies Record<BatchEndpoint, TaskEndpoint>

export const BatchMetadata = z
  .record(z.string().max(METADATA_KEY_MAX_CHARS), z.string().max(METADATA_VALUE_MAX_CHARS))
  .refine((pairs) => Object.keys(pairs).length <= BATCH_METADATA_MAX_PAIRS, `at most ${BATCH_METADATA_MAX_PAIRS} pairs`)
export type BatchMetadata = z.infer<typeof BatchMetadata>

/** `POST /v1/batches` */
export const CreateBatchRequest = z.strictObject({
  /** An id `POST /v1/files` answered; any other shape is refused before a file is looked for. */
  input_file_id: FileId,
  endpoint: BatchEndpoint,
  completion_window: z.literal('24h'),
  metadata: BatchMetadata.nullish(),
})
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>

export const BatchStatus = z.enum(['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'])
export type BatchStatus = z.infer<typeof BatchStatus>

/** Allowed moves of a batch; a final state has none. */
export const BATCH_TRANSITIONS = {
  /** Its lines are checked after `POST /v1/batches` answers; a cancel or the window's end stops the check, and nothing has run. */
  validating: ['in_progress', 'failed', 'cancelling', 'expired'],
  in_progress: ['finalizing', 'cancelling'],
  /** Writing the output and error files; `expired` when the window passed first. */
  finalizing: ['completed', 'expired'],
  /** In-flight lines are stopped, then the files of what finished are written. */
  cancelling: ['cancelled'],
  failed: [],
  completed: [],
  expired: [],
  cancelled: [],
} as const satisfies Record<BatchStatus, readonly BatchStatus[]>

/**
 * Why a line is refused by validation or fails when run: OpenAI's codes for the first, llorch's
 * error codes for the second, `batch_expired` and `batch_cancelled` for lines the batch never ran.
 */
export const BatchErrorCode = z.union([
  z.enum([
    'empty_file',
    'too_many_lines',
    'line_too_long',
    'invalid_json_line',
    'invalid_line',
    'duplicate_custom_id',
    'invalid_method',
    'invalid_url',
    'invalid_request',
    'model_not_found',
    'mixed_models',
    'file_not_found',
    'batch_expired',
    'batch_cancelled',
  ]),
  ErrorCode,
])
export type BatchErrorCode = z.infer<typeof BatchErrorCode>

export const BatchError = z.object({
  code: BatchErrorCode,
  message: z.string(),
  /** The field at fault, as a path in the line (`body.messages`). */
  param: z.string().nullable(),
  /** 1-based line of the input file. */
  line: z.int().positive().nullable(),
})
export type BatchError = z.infer<typeof BatchError>

export const BatchRequestCounts = z.object({ total: z.int().nonnegative(), completed: z.int().nonnegative(), failed: z.int().nonnegative() })
export type BatchRequestCounts = z.infer<typeof BatchRequestCounts>

export const BatchUsage = z.object({
  input_tokens: z.int().nonnegative(),
  input_tokens_details: z.object({ cached_tokens: z.int().nonnegative() }),
  output_tokens: z.int().nonnegative(),
  output_tokens_details: z.object({ reasoning_tokens: z.int().nonnegative() }),
  total_tokens: z.int().nonnegative(),
})
export type BatchUsage = z.infer<typeof BatchUsage>

const At = z.int().nonnegative().nullable()

/** OpenAI's batch object; `llorch_predicted_completion_at` is llorch's own. */
export const OpenAIBatch = z.object({
  id: z.string(),
  object: z.literal('batch'),
  endpoint: BatchEndpoint,
  model: z.string().nullable(),
  errors: z.object({ object: z.literal('list'), data: z.array(BatchError) }).nullable(),
  input_file_id: z.string(),
  completion_window: z.literal('24h'),
  status: BatchStatus,
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  created_at: z.int().nonnegative(),
  in_progress_at: At,
  expires_at: At,
  finalizing_at: At,
  completed_at: At,
  failed_at: At,
  expired_at: At,
  cancelling_at: At,
  cancelled_at: At,
  request_counts: BatchRequestCounts,
  usage: BatchUsage,
  metadata: BatchMetadata.nullable(),
  /** When the lines still to run should be done, at the rate the batch has run so far; null before any finished or once it ended. */
  llorch_predicted_completion_at: At,
})
export type OpenAIBatch = z.infer<typeof OpenAIBatch>

export const BatchList = listOf(OpenAIBatch)
export type BatchList = z.infer<typeof BatchList>

export const BatchListQuery = ListQuery
export type BatchListQuery = ListQuery

/** One line of a batch input file. */
export const BatchInputLine = z.object({
  custom_id: z.string().min(1).max(512),
  method: z.string(),
  url: z.string(),
  body: z.record(z.string(), z.unknown()),
})
export type BatchInputLine = z.infer<typeof BatchInputLine>

/** One line of a batch's output or error file. */
export const BatchOutputLine = z.object({
  id: z.string(),
  custom_id: z.string(),
  response: z.object({ status_code: z.int(), request_id: z.string(), body: z.unknown() }).nullable(),
  error: z.object({ code: BatchErrorCode, message: z.string() }).nullable(),
})
export type BatchOutputLine = z.infer<typeof BatchOutputLine>

/**
 * How batch lines ended, counted over every batch for `/metrics`: `completed` and `failed` lines
 * are in the output and error files, `retried` runs failed and ran again, `unrun` lines never
 * finished before their batch was cancelled or expired.
 */
export const BatchLineOutcome = z.enum(['completed', 'failed', 'retried', 'unrun'])
export type BatchLineOutcome = z.infer<typeof BatchLineOutcome>
export const BatchLineCounts = z.object({
  completed: z.int().nonnegative(),
  failed: z.int().nonnegative(),
  retried: z.int().nonnegative(),
  unrun: z.int().nonnegative(),
}) satisfies z.ZodType<Record<BatchLineOutcome, number>>
export type BatchLineCounts = z.infer<typeof BatchLineCounts>
export const NO_BATCH_LINES: BatchLineCounts = { completed: 0, failed: 0, retried: 0, unrun: 0 }

/** `GET /v2/batches`: every key's batches, newest first, each with its key, for the admin. */
export const AdminBatch = OpenAIBatch.extend({ api_key_id: z.string() })
export type AdminBatch = z.infer<typeof AdminBatch>
export const AdminBatchList = listOf(AdminBatch)
export type AdminBatchList = z.infer<typeof AdminBatchList>
