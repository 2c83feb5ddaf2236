import { DurableObject } from 'cloudflare:workers'
import { BATCH_TRANSITIONS, refusal, transition } from '../protocol/index.ts'
import type { BatchError, BatchStatus, OpenAIBatch } from '../protocol/index.ts'
import type { BatchCaller, BatchSpec, ObjectResult, ViewedBatch } from './batch/batch-calls.ts'
import { LineSplitter } from './batch/line-splitter.ts'
import { LineStore } from './batch/line-store.ts'
import type { StoredLine } from './batch/line-store.ts'
import { lineOutcome, outputLineOf, unrunLineOf } from './batch/line-outcome.ts'
import type { LineRun } from './batch/line-outcome.ts'
import { startLineTask } from './batch/line-task.ts'
import { PoolCapacity } from './batch/pool-capacity.ts'
import type { LineTask } from './batch/line-task.ts'
import { BatchValidator } from './batch/line-validation.ts'
import { ENTERED_AT, StoredBatch, batchView, isBatchOver, lineCountsOf, newBatch, unreported } from './batch/stored-batch.ts'
import { jsonlBytes, newFileId, writeFile } from './batch/file-writer.ts'
import { ALL_BATCHES_LISTING, keyListing } from './batch/listing-store.ts'
import { countStorageWrite } from './runtime/cost-counts.ts'
import { countedSql } from './storage/counted-sql.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import { readWorkerSettings } from './runtime/env.ts'
import type { Bindings } from './runtime/env.ts'
import { logError, logEvent } from './runtime/log.ts'

/** While a batch is not over its object wakes this often: to go on after a restart, to run lines whose wait ended, and to expire it. */
export const BATCH_ALARM_INTERVAL_MS = 2_000

const RECORD_KEY = 'batch'

const notFound = (batchId: string) => refusal('not_found', `no batch "${batchId}" for this API key`)

/**
 * One batch of `/v1/batches`, named by its id: its record, its lines and their outputs. The lines
 * are checked after the create call answers, the batch `validating` meanwhile. Each line
 * runs as a task of class `batch` in its pool, as many at once as the pool's `batch_slot_share`
 * of its ready slots (the queue serves interactive tasks first, so lines take only the slots
 * interactive traffic leaves). A line's output is stored in the same write that marks it done, so a line runs again only
 * when it has none; after a restart the lines that were running run again, found by the alarm.
 */
export class BatchObject extends DurableObject<Bindings> {
  readonly #lines: LineStore
  #batch: StoredBatch | null | undefined = undefined
  readonly #running = new Map<number, LineTask>()
  readonly #results = new Set<Promise<void>>()
  #capacity: PoolCapacity | null = null
  #pumping = false
  #pumpAgain = false
  #finishing: Promise<void> | null = null
  #validation: Promise<void> | null = null

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    this.#lines = new LineStore(countedSql(ctx.storage.sql))
  }

  /**
   * Checks the input file is the key's and of purpose `batch`, then stores the batch `validating`
   * and answers it; its lines are checked after (`#validate`), as OpenAI does.
   */
  create(spec: BatchSpec): Promise<ObjectResult<OpenAIBatch>> {
    return this.#guard('create', async () => {
      if (this.#read()) return refusal('conflict', `batch ${spec.batchId} exists already`)
      const summary = await this.env.FILES.getByName(spec.inputFileId).summary({ apiKeyId: spec.apiKeyId })
      if (!summary.ok) return refusal('not_found', `no file "${spec.inputFileId}" for this API key`, { param: 'input_file_id' })
      if (summary.value.purpose !== 'batch')
        return refusal('invalid_request', `file ${spec.inputFileId} is a batch's output; a batch takes a file uploaded with purpose "batch"`, {
          param: 'input_file_id',
        })
      const now = Date.now()
      const batch = newBatch(spec, { now, windowMs: readWorkerSettings(this.env).BATCH_COMPLETION_WINDOW_MS })
      // Listed before it is stored: a create that breaks off between leaves a listing of no batch, which lists skip, never a batch nobody sees.
      const listed = { kind: 'batch' as const, id: batch.id, apiKeyId: batch.apiKeyId, tag: '', createdAt: batch.createdAt }
      await this.env.LISTINGS.getByName(keyListing(batch.apiKeyId)).add(listed)
      await this.env.LISTINGS.getByName(ALL_BATCHES_LISTING).add(listed)
      this.#batch = batch
      this.#save()
      await this.ctx.storage.setAlarm(now + BATCH_ALARM_INTERVAL_MS)
      this.#startValidation(batch)
      return { ok: true, value: batchView(batch, now) }
    })
  }

  /** `GET /v1/batches/{id}` for the key that made it, `GET /v2/batches/{id}` for the operator. */
  view(caller: BatchCaller): Promise<ObjectResult<ViewedBatch>> {
    return this.#guard('view', () => {
      const batch = this.#visible(caller)
      return batch ? { ok: true, value: { batch: batchView(batch, Date.now()), apiKeyId: batch.apiKeyId } } : notFound(this.#batchId)
    })
  }

  /**
   * Stops the lines in flight and writes the files of what finished; answers the batch `cancelled`
   * (with no file when it was still validating), or as it was if it had ended.
   */
  cancel(caller: BatchCaller): Promise<ObjectResult<ViewedBatch>> {
    return this.#guard('cancel', async () => {
      const batch = this.#visible(caller)
      if (!batch) return notFound(this.#batchId)
      if (batch.status === 'validating') this.#endValidating(batch, 'cancelled', Date.now())
      if (batch.status === 'in_progress') {
        this.#move(batch, 'cancelling', Date.now())
        logEvent('batch.cancelling', { batch: batch.id, key: batch.apiKeyId, running: this.#running.size })
        await this.#stopRunning()
        await this.#finishIfDone()
      }
      return { ok: true, value: { batch: batchView(batch, Date.now()), apiKeyId: batch.apiKeyId } }
    })
  }

  /**
   * Goes on after a restart (a batch still validating is checked again from its first line), runs
   * lines whose wait ended, expires the batch past its window, finishes what was left unfinished.
   */
  override alarm(): Promise<void> {
    return this.#guard('alarm', async () => {
      const batch = this.#read()
      if (!batch || isBatchOver(batch.status)) return
      const now = Date.now()
      if (batch.status === 'validating' && now >= batch.expiresAt) this.#endValidating(batch, 'expired', now)
      if (batch.status === 'validating') this.#startValidation(batch)
      if (batch.status === 'in_progress' && now >= batch.expiresAt) {
        this.#move(batch, 'finalizing', now)
        logEvent('batch.expiring', { batch: batch.id, key: batch.apiKeyId, running: this.#running.size })
        await this.#stopRunning()
      }
      await this.#pump()
      await this.#reportLines(batch)
      if (!isBatchOver(batch.status)) await this.ctx.storage.setAlarm(Date.now() + BATCH_ALARM_INTERVAL_MS)
    })
  }

  get #batchId(): string {
    return this.ctx.id.name ?? ''
  }

  /** The batch, if the caller may see it; another key's is as unknown as a missing one. */
  #visible(caller: BatchCaller): StoredBatch | null {
    const batch = this.#read()
    if (!batch) return null
    return 'operator' in caller || batch.apiKeyId === caller.apiKeyId ? batch : null
  }

  /** The record; read from storage by a fresh instance, which runs nothing yet: lines left running then run again. */
  #read(): StoredBatch | null {
    if (this.#batch === undefined) {
      const stored: unknown = this.ctx.storage.kv.get(RECORD_KEY)
      this.#batch = stored === undefined ? null : StoredBatch.parse(stored)
      const recovered = this.#batch && !isBatchOver(this.#batch.status) ? this.#lines.recover() : 0
      if (recovered > 0) {
        logEvent('batch.recovered', { batch: this.#batch?.id, lines: recovered })
        // Whatever woke this instance, its alarm runs those lines again now.
        void this.ctx.storage.setAlarm(Date.now())
      }
    }
    return this.#batch
  }

  /** Checks the lines without holding up the caller; the alarm starts the check again if this instance ends first. */
  #startValidation(batch: StoredBatch): void {
    if (this.#validation) return
    this.#validation = this.#validate(batch)
      .catch((error: unknown) => logError('batch.validation_failed', { batch: batch.id, error: String(error) }))
      .finally(() => (this.#validation = null))
    this.ctx.waitUntil(this.#validation)
  }

  /**
   * Reads and checks every line of the input file, from the first: lines a check cut short had
   * stored go first. A bad line fails the batch with each named; a good file starts running. A
   * cancel or the window's end while a part is read ends the check.
   */
  async #validate(batch: StoredBatch): Promise<void> {
    this.#lines.clear()
    const stopped = () => batch.status !== 'validating'
    const file = this.env.FILES.getByName(batch.inputFileId)
    const fileGone = () =>
      this.#failValidation(batch, [
        { code: 'file_not_found', message: `file ${batch.inputFileId} was deleted while the batch read it`, param: 'input_file_id', line: null },
      ])
    const validator = new BatchValidator({ endpoint: batch.endpoint, knownModels: batch.knownModels })
    const splitter = new LineSplitter()
    let lineNumber = 0
    const check = (text: string) => {
      lineNumber += 1
      const valid = validator.check(text, lineNumber)
      if (valid && !validator.failed) this.#lines.insert(valid)
    }
    const summary = await file.summary({ apiKeyId: batch.apiKeyId })
    if (stopped()) return
    if (!summary.ok) return fileGone()
    for (let index = 0; index < summary.value.parts; index += 1) {
      const part = await file.part({ apiKeyId: batch.apiKeyId, index })
      if (stopped()) return
      if (!part.ok || !part.value) return fileGone()
      for (const text of splitter.push(part.value)) check(text)
    }
    for (const text of splitter.end()) check(text)
    if (validator.lines === 0) validator.empty()
    batch.total = validator.lines
    batch.model = validator.model
    if (validator.failed) return this.#failValidation(batch, validator.errors)
    this.#move(batch, 'in_progress', Date.now())
    logEvent('batch.started', { batch: batch.id, key: batch.apiKeyId, model: batch.model, lines: batch.total })
    await this.#pump()
  }

  #failValidation(batch: StoredBatch, errors: BatchError[]): void {
    batch.errors = errors
    this.#endValidating(batch, 'failed', Date.now())
  }

  /** The batch ends before any line ran: the lines a check stored go, and no file is written. */
  #endValidating(batch: StoredBatch, to: 'failed' | 'expired' | 'cancelled', now: number): void {
    this.#lines.clear()
    if (to === 'cancelled') this.#move(batch, 'cancelling', now)
    this.#move(batch, to, now)
    logEvent('batch.ended', { batch: batch.id, key: batch.apiKeyId, status: to, stage: 'validating', errors: batch.errors.length })
  }

  /** Starts due lines while the pool has slots for them; finishes the batch when no line is left. */
  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true
      return
    }
    this.#pumping = true
    try {
      do {
        this.#pumpAgain = false
        const batch = this.#batch
        if (!batch || batch.status !== 'in_progress') break
        const slots = await this.#linesAtOnce(batch)
        for (let next = this.#lines.nextDue(Date.now()); next && this.#running.size < slots; next = this.#lines.nextDue(Date.now())) this.#run(batch, next)
      } while (this.#pumpAgain)
    } finally {
      this.#pumping = false
    }
    await this.#finishIfDone()
  }

  /** Lines that may run at once: the batch's share of its pool's ready slots. */
  #linesAtOnce(batch: StoredBatch): Promise<number> {
    if (batch.model === null) return Promise.resolve(1)
    this.#capacity ??= new PoolCapacity(this.env, batch.model)
    return this.#capacity.lines(Date.now())
  }

  #run(batch: StoredBatch, line: StoredLine): void {
    const attempt = this.#lines.start(line)
    const task = startLineTask({
      env: this.env,
      endpoint: batch.endpoint,
      bodyJson: line.body,
      apiKeyId: batch.apiKeyId,
      keyLimits: batch.keyLimits,
      waitUntil: (promise) => this.ctx.waitUntil(promise),
    })
    this.#running.set(line.line, task)
    const settled = task.result
      .then((run) => this.#settle(batch, line, attempt, task.requestId, run))
      .catch((error: unknown) => logError('batch.settle_failed', { batch: batch.id, line: line.line, error: String(error) }))
      .finally(() => this.#results.delete(settled))
    this.#results.add(settled)
    this.ctx.waitUntil(settled)
  }

  /** One run of a line ended: its output stored, its error stored, or the line back to pending. */
  async #settle(batch: StoredBatch, line: StoredLine, attempt: number, requestId: string, run: LineRun): Promise<void> {
    this.#running.delete(line.line)
    const now = Date.now()
    const outcome = lineOutcome(run, { attempts: attempt, stopping: batch.status !== 'in_progress' })
    const output = outputLineOf({ customId: line.custom_id, requestId, run })
    if (outcome.kind === 'output' && this.#lines.finish(line.line, attempt, { ok: true, output })) {
      batch.completed += 1
      batch.inputTokens += outcome.usage.promptTokens
      batch.outputTokens += outcome.usage.completionTokens
    }
    if (outcome.kind === 'error' && this.#lines.finish(line.line, attempt, { ok: false, output })) batch.failed += 1
    if (outcome.kind === 'retry') {
      this.#lines.retry(line.line, attempt, { notBefore: now + outcome.delayMs, refund: !outcome.spent })
      if (outcome.spent) batch.retried += 1
    }
    if (outcome.kind === 'stopped') this.#lines.retry(line.line, attempt, { notBefore: now, refund: true })
    if (outcome.kind !== 'output')
      logEvent('batch.line_ended', { batch: batch.id, line: line.line, attempt, outcome: outcome.kind, code: run.ok ? null : run.error.code })
    this.#save()
    await this.#pump()
  }

  /** Cancels every line in flight and waits until each has settled. */
  async #stopRunning(): Promise<void> {
    const cancels = [...this.#running.values()].map((task) =>
      task.cancel().catch((error: unknown) => logError('batch.cancel_failed', { batch: this.#batchId, task: task.requestId, error: String(error) })),
    )
    await Promise.all(cancels)
    await Promise.all([...this.#results])
  }

  /** Nothing left to run or running: the output and error files are written and the batch ends. */
  async #finishIfDone(): Promise<void> {
    const batch = this.#batch
    if (!batch || this.#running.size > 0) return
    if (batch.status === 'in_progress' && this.#lines.unfinished() > 0) return
    if (batch.status !== 'in_progress' && batch.status !== 'finalizing' && batch.status !== 'cancelling') return
    this.#finishing ??= this.#finish(batch).finally(() => (this.#finishing = null))
    await this.#finishing
  }

  async #finish(batch: StoredBatch): Promise<void> {
    const now = Date.now()
    if (batch.status === 'in_progress') this.#move(batch, 'finalizing', now)
    const expired = batch.status === 'finalizing' && batch.finalizingAt !== null && batch.finalizingAt >= batch.expiresAt
    const unrunCode = batch.status === 'cancelling' ? 'batch_cancelled' : expired ? 'batch_expired' : null
    const unrun =
      unrunCode === null
        ? []
        : [...this.#lines.unfinishedLines()].map((line) => JSON.stringify(unrunLineOf({ customId: line.custom_id, line: line.line, code: unrunCode })))
    const outputs = [...this.#lines.outputs(true)]
    const errors = [...this.#lines.outputs(false), ...unrun]
    batch.outputFileId = outputs.length > 0 ? await this.#writeOutput(batch, batch.outputFileId, 'output', outputs) : null
    batch.errorFileId = errors.length > 0 ? await this.#writeOutput(batch, batch.errorFileId, 'error', errors) : null
    batch.unrun = unrun.length
    this.#move(batch, batch.status === 'cancelling' ? 'cancelled' : expired ? 'expired' : 'completed', Date.now())
    await this.#reportLines(batch)
    logEvent('batch.ended', {
      batch: batch.id,
      key: batch.apiKeyId,
      status: batch.status,
      completed: batch.completed,
      failed: batch.failed,
      unrun: unrun.length,
    })
  }

  /** Adds the lines that ended since the last report to the fleet's count; one that fails is sent with the next. */
  async #reportLines(batch: StoredBatch): Promise<void> {
    const counts = lineCountsOf(batch)
    const delta = unreported(counts, batch.reported)
    if (!delta) return
    try {
      await this.env.LISTINGS.getByName(ALL_BATCHES_LISTING).countLines(delta)
      batch.reported = counts
      this.#save()
    } catch (error) {
      logError('batch.count_failed', { batch: batch.id, error: String(error) })
    }
  }

  /** Writes one of the batch's files (again, under the same id, when a restart interrupted the first write). */
  async #writeOutput(batch: StoredBatch, knownId: string | null, kind: 'output' | 'error', lines: string[]): Promise<string> {
    const id = knownId ?? newFileId()
    if (knownId === null) {
      if (kind === 'output') batch.outputFileId = id
      else batch.errorFileId = id
      this.#save()
    }
    const meta = {
      id,
      apiKeyId: batch.apiKeyId,
      filename: `${batch.id}_${kind}.jsonl`,
      purpose: 'batch_output' as const,
      createdAt: Date.now(),
    }
    const written = await writeFile(this.env, meta, jsonlBytes(lines))
    if (!written.ok) logError('batch.file_write_failed', { batch: batch.id, file: id, error: written.error.message })
    return id
  }

  #move(batch: StoredBatch, to: BatchStatus, now: number): void {
    batch.status = transition<BatchStatus>(BATCH_TRANSITIONS, batch.status, to, { machine: 'batch', subject: `batch ${batch.id}` })
    const field = ENTERED_AT[to]
    if (field !== null) batch[field] = now
    this.#save()
  }

  #save(): void {
    const batch = this.#batch
    if (!batch) return
    countStorageWrite()
    this.ctx.storage.kv.put(RECORD_KEY, batch)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'BatchObject', name: this.ctx.id.name, method }, work)
  }
}
