import { describe, expect, it } from 'vitest'
import { BATCH_LINE_BACKOFF_MS, lineOutcome, outputLineOf, unrunLineOf } from '../../../../control-plane/batch/line-outcome.ts'
import type { LineRun } from '../../../../control-plane/batch/line-outcome.ts'
import { BATCH_LINE_MAX_ATTEMPTS, LlorchError } from '../../../../protocol/index.ts'
import type { ErrorCode } from '../../../../protocol/index.ts'

const ok: LineRun = { ok: true, body: { object: 'chat.completion' }, promptTokens: 3, completionTokens: 5 }
function failed(code: ErrorCode, retryAfterSeconds?: number): LineRun {
  const error = new LlorchError(code, `failed with ${code}`)
  return { ok: false, error: { code, message: error.message, retriable: error.retriable, retryAfterSeconds, body: error.toOpenAI() } }
}

describe('batch line outcome', () => {
  it('stores a reply as output with its usage', () => {
    expect(lineOutcome(ok, { attempts: 1, stopping: false })).toEqual({ kind: 'output', usage: { promptTokens: 3, completionTokens: 5 } })
  })

  it(`runs a line whose engine failed it again, ${BATCH_LINE_MAX_ATTEMPTS} runs at most, then stores its error`, () => {
    expect(lineOutcome(failed('node_lost'), { attempts: 1, stopping: false })).toEqual({ kind: 'retry', spent: true, delayMs: BATCH_LINE_BACKOFF_MS })
    expect(lineOutcome(failed('node_lost'), { attempts: BATCH_LINE_MAX_ATTEMPTS, stopping: false })).toEqual({ kind: 'error' })
    expect(lineOutcome(failed('engine_error'), { attempts: 1, stopping: false })).toMatchObject({ kind: 'retry', spent: true })
    const crashedMidReply = failed('engine_unavailable')
    if (!crashedMidReply.ok) crashedMidReply.error.retriable = false
    expect(lineOutcome(crashedMidReply, { attempts: 1, stopping: false })).toMatchObject({ kind: 'retry', spent: true })
    expect(lineOutcome(failed('engine_error'), { attempts: BATCH_LINE_MAX_ATTEMPTS, stopping: false })).toEqual({ kind: 'error' })
    expect(lineOutcome(failed('invalid_request'), { attempts: 1, stopping: false })).toEqual({ kind: 'error' })
  })

  it('waits without spending an attempt when the pool says not now', () => {
    expect(lineOutcome(failed('queue_full', 3), { attempts: 3, stopping: false })).toEqual({ kind: 'retry', spent: false, delayMs: 3_000 })
    expect(lineOutcome(failed('no_replica'), { attempts: 3, stopping: false })).toEqual({ kind: 'retry', spent: false, delayMs: BATCH_LINE_BACKOFF_MS })
  })

  it('leaves a line stopped by cancel or expiry unfinished', () => {
    expect(lineOutcome(failed('cancelled'), { attempts: 1, stopping: true })).toEqual({ kind: 'stopped' })
    expect(lineOutcome(failed('node_lost'), { attempts: 1, stopping: true })).toEqual({ kind: 'stopped' })
    expect(lineOutcome(ok, { attempts: 1, stopping: true })).toMatchObject({ kind: 'output' })
  })

  it('writes OpenAI output lines: the response, or the error the route would answer, or why it never ran', () => {
    expect(outputLineOf({ customId: 'a', requestId: 'ab-cd', run: ok })).toEqual({
      id: 'batch_req_abcd',
      custom_id: 'a',
      response: { status_code: 200, request_id: 'ab-cd', body: { object: 'chat.completion' } },
      error: null,
    })
    expect(outputLineOf({ customId: 'b', requestId: 'r', run: failed('engine_error') }).response).toEqual({
      status_code: 502,
      request_id: 'r',
      body: { error: { message: 'failed with engine_error', type: 'server_error', code: 'engine_error', param: null } },
    })
    expect(unrunLineOf({ customId: 'c', line: 7, code: 'batch_cancelled' })).toMatchObject({
      custom_id: 'c',
      response: null,
      error: { code: 'batch_cancelled' },
    })
  })
})
