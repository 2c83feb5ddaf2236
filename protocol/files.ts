import { z } from 'zod'

/** Largest file `POST /v1/files` takes, as OpenAI's Batch API allows. */
export const FILE_MAX_BYTES = 200 * 1024 * 1024
/** Most lines (requests) one batch input file may hold. */
export const FILE_MAX_LINES = 50_000
/** Shortest and longest `expires_after.seconds`: an hour to thirty days, as OpenAI takes it. */
export const FILE_EXPIRES_MIN_SECONDS = 3_600
export const FILE_EXPIRES_MAX_SECONDS = 30 * 86_400

/** A file id as llorch makes them: `file-` and 24 hex digits; any other is no file's. */
export const FileId = z.string().regex(/^file-[0-9a-f]{24}$/)

/** `batch`: an input file a client uploads; `batch_output`: a batch's output or error file. */
export const FilePurpose = z.enum(['batch', 'batch_output'])
export type FilePurpose = z.infer<typeof FilePurpose>

export const FileStatus = z.enum(['uploaded', 'processed', 'error'])
export type FileStatus = z.infer<typeof FileStatus>

const Seconds = z.int().nonnegative()

/** OpenAI's file object, as `GET /v1/files/{id}` answers it. */
export const OpenAIFile = z.object({
  id: z.string(),
  object: z.literal('file'),
  bytes: z.int().nonnegative(),
  created_at: Seconds,
  /** Null when the file never expires. */
  expires_at: Seconds.nullable(),
  filename: z.string(),
  purpose: FilePurpose,
  status: FileStatus,
  status_details: z.string().nullable(),
})
export type OpenAIFile = z.infer<typeof OpenAIFile>

export const FileDeleted = z.object({ id: z.string(), object: z.literal('file'), deleted: z.boolean() })
export type FileDeleted = z.infer<typeof FileDeleted>

/**
 * The fields of the multipart form of `POST /v1/files` besides `file`. The official clients send
 * `expires_after` as bracketed fields (`expires_after[anchor]`, `expires_after[seconds]`).
 */
export const CreateFileFields = z.strictObject({
  purpose: z.literal('batch', { error: 'only "batch" files can be uploaded' }),
  'expires_after[anchor]': z.literal('created_at').optional(),
  'expires_after[seconds]': z.coerce.number().int().min(FILE_EXPIRES_MIN_SECONDS).max(FILE_EXPIRES_MAX_SECONDS).optional(),
})
export type CreateFileFields = z.infer<typeof CreateFileFields>

/** A cursor page of OpenAI's list endpoints: `after` is the last id of the previous page. */
export const ListQuery = z.strictObject({
  after: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
})
export type ListQuery = z.infer<typeof ListQuery>

/** `GET /v1/files` also takes OpenAI's `purpose` and `order`. */
export const FileListQuery = ListQuery.extend({
  purpose: FilePurpose.optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
})
export type FileListQuery = z.infer<typeof FileListQuery>

/** OpenAI's list shape, for any item. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({
    object: z.literal('list'),
    data: z.array(item),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
}

export const FileList = listOf(OpenAIFile)
export type FileList = z.infer<typeof FileList>
