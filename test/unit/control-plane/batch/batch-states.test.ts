import { describe, expect, it } from 'vitest'
import { LINE_TRANSITIONS, moveLine } from '../../../../control-plane/batch/line-states.ts'
import { batchSlots } from '../../../../control-plane/pool/batch-share.ts'
import { batchView, lineCountsOf, newBatch, predictedCompletionAt, unreported } from '../../../../control-plane/batch/stored-batch.ts'
import type { StoredBatch } from '../../../../control-plane/batch/stored-batch.ts'
import { BATCH_COMPLETION_WINDOW_MS, BATCH_TRANSITIONS, IllegalTransitionError, OpenAIBatch, transition } from '../../../../protocol/index.ts'
import type { BatchStatus } from '../../../../protocol/index.ts'

const batch: StoredBatch = {
  ...newBatch(
    {
      batchId: 'batch_0123456789abcdef01234567',
      apiKeyId: 'key_1',
      keyLimits: {},
      endpoint: '/v1/chat/completions',
      inputFileId: 'file-0123456789abcdef01234567',
      metadata: null,
      knownModels: ['m'],
    },
    { now: 1_000_000, windowMs: BATCH_COMPLETION_WINDOW_MS },
  ),
  model: 'm',
  status: 'in_progress',
  inProgressAt: 1_000_000,
  total: 10,
  completed: 3,
  failed: 1,
  inputTokens: 30,
  outputTokens: 12,
  retried: 2,
  reported: { completed: 1, failed: 1, retried: 0, unrun: 0 },
}

describe('batch states', () => {
  it('ends in one of four final states, each with no way out', () => {
    for (const status of ['failed', 'completed', 'expired', 'cancelled'] as const) expect(BATCH_TRANSITIONS[status]).toEqual([])
    expect(transition<BatchStatus>(BATCH_TRANSITIONS, 'in_progress', 'cancelling', { machine: 'batch', subject: 'b' })).toBe('cancelling')
    expect(BATCH_TRANSITIONS.validating).toEqual(expect.arrayContaining(['in_progress', 'failed', 'cancelling', 'expired']))
    expect(() => transition<BatchStatus>(BATCH_TRANSITIONS, 'completed', 'in_progress', { machine: 'batch', subject: 'b' })).toThrow(IllegalTransitionError)
    expect(() => transition<BatchStatus>(BATCH_TRANSITIONS, 'cancelling', 'completed', { machine: 'batch', subject: 'b' })).toThrow(
      'b cannot go from cancelling to completed',
    )
  })

  it('never runs a done line again', () => {
    expect(LINE_TRANSITIONS.done).toEqual([])
    expect(LINE_TRANSITIONS.pending).toEqual(['running'])
    expect(() => moveLine(4, 'done', 'running')).toThrow('line 4 cannot go from done to running (batch line)')
  })

  it("shows OpenAI's batch object, with a completion time predicted from the rate so far", () => {
    const now = 1_000_000 + 4_000
    const view = OpenAIBatch.parse(batchView(batch, now))
    expect(view).toMatchObject({
      status: 'in_progress',
      request_counts: { total: 10, completed: 3, failed: 1 },
      usage: { input_tokens: 30, output_tokens: 12, total_tokens: 42 },
      errors: null,
      created_at: 1_000,
      expires_at: 1_000 + 86_400,
    })
    expect(predictedCompletionAt(batch, now)).toBe(now + 6_000)
    expect(predictedCompletionAt({ ...batch, status: 'completed' }, now)).toBeNull()
    expect(predictedCompletionAt({ ...batch, completed: 0, failed: 0 }, now)).toBeNull()
  })

  it('reports to /metrics only the lines that ended since the last report', () => {
    expect(unreported(lineCountsOf(batch), batch.reported)).toEqual({ completed: 2, failed: 0, retried: 2, unrun: 0 })
    expect(unreported(lineCountsOf(batch), lineCountsOf(batch))).toBeNull()
  })

  it("runs the pool's share of its ready slots at once, one line at least", () => {
    expect(batchSlots(8, 1)).toBe(8)
    expect(batchSlots(8, 0.5)).toBe(4)
    expect(batchSlots(3, 0.5)).toBe(1)
    expect(batchSlots(0, 1)).toBe(1)
  })
})
