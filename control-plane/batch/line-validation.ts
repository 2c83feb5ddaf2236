import type { z } from 'zod'
import {
  BATCH_LINE_MAX_BYTES,
  BATCH_MAX_REPORTED_ERRORS,
  BATCH_TASK_ENDPOINTS,
  BatchInputLine,
  ChatCompletionRequest,
  CompletionRequest,
  EmbeddingRequest,
  MAX_JSON_DEPTH,
  describeIssues,
  formatIssuePath,
  nestsDeeperThan,
} from '../../protocol/index.ts'
import type { BatchEndpoint, BatchError, BatchErrorCode } from '../../protocol/index.ts'
import type { Generation } from '../task/generation.ts'

/** A line that passed: what its task sends to the engine. */
export interface ValidLine {
  /** 1-based, as the file numbers it. */
  line: number
  customId: string
  generation: Generation
}

/** The request a line's body is, as the route of `endpoint` takes it, with llorch's `priority` taken off. */
export function generationOf(endpoint: BatchEndpoint, body: unknown): { ok: true; generation: Generation } | { ok: false; error: z.ZodError } {
  const taskEndpoint = BATCH_TASK_ENDPOINTS[endpoint]
  if (taskEndpoint === 'chat') {
    const parsed = ChatCompletionRequest.safeParse(body)
    if (!parsed.success) return { ok: false, error: parsed.error }
    const { priority: _priority, ...request } = parsed.data
    return { ok: true, generation: { endpoint: taskEndpoint, body: request } }
  }
  if (taskEndpoint === 'completions') {
    const parsed = CompletionRequest.safeParse(body)
    if (!parsed.success) return { ok: false, error: parsed.error }
    const { priority: _priority, ...request } = parsed.data
    return { ok: true, generation: { endpoint: taskEndpoint, body: request } }
  }
  const parsed = EmbeddingRequest.safeParse(body)
  if (!parsed.success) return { ok: false, error: parsed.error }
  const { priority: _priority, ...request } = parsed.data
  return { ok: true, generation: { endpoint: taskEndpoint, body: request } }
}

const encoder = new TextEncoder()

/**
 * Checks a batch input file line by line before any of it runs: JSON, the line's own fields, a
 * `custom_id` no earlier line used, `method` POST, `url` the batch's endpoint, a body the route
 * would take, one model for the whole batch, and that model served here. Errors name the line
 * and the field; the first `BATCH_MAX_REPORTED_ERRORS` are kept.
 */
export class BatchValidator {
  readonly #endpoint: BatchEndpoint
  readonly #knownModels: ReadonlySet<string>
  readonly #customIds = new Set<string>()
  #model: string | null = null
  #lines = 0
  #errorCount = 0
  readonly errors: BatchError[] = []

  constructor({ endpoint, knownModels }: { endpoint: BatchEndpoint; knownModels: readonly string[] }) {
    this.#endpoint = endpoint
    this.#knownModels = new Set(knownModels)
  }

  /** The one model every valid line names; null before the first. */
  get model(): string | null {
    return this.#model
  }

  get lines(): number {
    return this.#lines
  }

  get failed(): boolean {
    return this.#errorCount > 0
  }

  /** Checks the next line of the file; blank lines are skipped and not numbered apart. */
  check(text: string, line: number): ValidLine | null {
    if (text.trim() === '') return null
    this.#lines += 1
    const refuse = (code: BatchErrorCode, message: string, param: string | null = null) => {
      this.#refuse({ code, message, param, line })
      return null
    }
    if (encoder.encode(text).byteLength > BATCH_LINE_MAX_BYTES) return refuse('line_too_long', `line ${line} is longer than ${BATCH_LINE_MAX_BYTES} bytes`)
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return refuse('invalid_json_line', `line ${line} nests deeper than ${MAX_JSON_DEPTH} levels`)
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return refuse('invalid_json_line', `line ${line} is not valid JSON`)
    }
    const parsed = BatchInputLine.safeParse(json)
    if (!parsed.success) {
      const first = parsed.error.issues[0]
      return refuse('invalid_line', `line ${line}: ${describeIssues(parsed.error.issues)}`, first ? formatIssuePath(first.path) : null)
    }
    const { custom_id: customId, method, url, body } = parsed.data
    if (this.#customIds.has(customId)) return refuse('duplicate_custom_id', `line ${line}: custom_id "${customId}" is used by an earlier line`, 'custom_id')
    this.#customIds.add(customId)
    if (method !== 'POST') return refuse('invalid_method', `line ${line}: method must be "POST", got "${method}"`, 'method')
    if (url !== this.#endpoint) return refuse('invalid_url', `line ${line}: url must be the batch's endpoint "${this.#endpoint}", got "${url}"`, 'url')
    const request = generationOf(this.#endpoint, body)
    if (!request.ok) {
      const first = request.error.issues[0]
      return refuse(
        'invalid_request',
        `line ${line}: invalid body: ${describeIssues(request.error.issues)}`,
        first ? `body.${formatIssuePath(first.path)}` : 'body',
      )
    }
    const { generation } = request
    if ('stream' in generation.body && generation.body.stream === true)
      return refuse('invalid_request', `line ${line}: a batch line cannot stream`, 'body.stream')
    const model = generation.body.model
    if (!this.#knownModels.has(model)) return refuse('model_not_found', `line ${line}: the model "${model}" does not exist`, 'body.model')
    this.#model ??= model
    if (model !== this.#model)
      return refuse('mixed_models', `line ${line}: every line of a batch must name one model; "${this.#model}" came first, got "${model}"`, 'body.model')
    return { line, customId, generation }
  }

  /** The file had no lines. */
  empty(): void {
    this.#refuse({ code: 'empty_file', message: 'the input file has no lines', param: null, line: null })
  }

  #refuse(error: BatchError): void {
    this.#errorCount += 1
    if (this.errors.length < BATCH_MAX_REPORTED_ERRORS) this.errors.push(error)
  }
}
