import type { BatchEndpoint, BatchMetadata, KeyLimits, OpenAIBatch, OpenAIFile, Refusal } from '../../protocol/index.ts'

/** What a file or batch object answers: the value, or why not. */
export type ObjectResult<T> = { ok: true; value: T } | Refusal

/** What a batch reads of its input file: its purpose and how many parts to read. */
export interface FileSummary {
  purpose: OpenAIFile['purpose']
  lines: number
  parts: number
}

/** What the Worker hands over to create a batch; the request is validated, the models are the registry's. */
export interface BatchSpec {
  batchId: string
  apiKeyId: string
  keyLimits: KeyLimits
  endpoint: BatchEndpoint
  inputFileId: string
  metadata: BatchMetadata | null
  knownModels: string[]
}

/** Who asks: the key that made the batch sees it; the operator (the admin API) sees every batch. */
export type BatchCaller = { apiKeyId: string } | { operator: true }

/** A batch as it is shown, and the key that owns it (the admin API shows that too). */
export interface ViewedBatch {
  batch: OpenAIBatch
  apiKeyId: string
}
