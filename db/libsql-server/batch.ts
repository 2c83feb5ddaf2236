import type { BusyRetryOptions } from './busy-retry.ts'
import { executeStmt } from './execute-stmt.ts'
import type { HranaBatch, HranaBatchCond, HranaBatchResult } from './hrana-schema.ts'
import type { Stream } from './streams.ts'

/** What became of each earlier step, as conditions see it. */
type StepOutcome = 'ok' | 'error' | 'skipped'

function holds(cond: HranaBatchCond, outcomes: readonly StepOutcome[], stream: Stream): boolean {
  switch (cond.type) {
    case 'ok':
      return outcomes[cond.step] === 'ok'
    case 'error':
      return outcomes[cond.step] === 'error'
    case 'not':
      return !holds(cond.cond, outcomes, stream)
    case 'and':
      return cond.conds.every((c) => holds(c, outcomes, stream))
    case 'or':
      return cond.conds.some((c) => holds(c, outcomes, stream))
    case 'is_autocommit':
      return !stream.inTransaction
  }
}

/**
 * Runs the steps in order. A step whose condition is false is skipped (null result and null
 * error); a failing step records its error and the batch goes on, so the client's conditions
 * decide what follows (its batches roll back with `ROLLBACK` when `COMMIT` did not run).
 */
export async function runBatch(stream: Stream, batch: HranaBatch, options: BusyRetryOptions): Promise<HranaBatchResult> {
  const result: HranaBatchResult = { step_results: [], step_errors: [] }
  const outcomes: StepOutcome[] = []
  for (const step of batch.steps) {
    if (step.condition && !holds(step.condition, outcomes, stream)) {
      outcomes.push('skipped')
      result.step_results.push(null)
      result.step_errors.push(null)
      continue
    }
    const outcome = await executeStmt(stream, step.stmt, options)
    outcomes.push(outcome.ok ? 'ok' : 'error')
    result.step_results.push(outcome.ok ? outcome.value : null)
    result.step_errors.push(outcome.ok ? null : outcome.error)
  }
  return result
}
