import { describe, expect, it } from 'vitest'
import { NativeEventMapper, encodeSseEvent } from '../../../control-plane/native-task/native-events.ts'

const times = { createdAt: 1_000, startedAt: 1_500, firstTokenAt: 1_600 }
const standing = (position: number, predictedStartMs: number) => ({ kind: 'queued' as const, standing: { position, predictedStartMs, loading: null } })

describe('NativeEventMapper', () => {
  it('sends `queued` only when the place or the prediction changes, and `loading` once per engine start', () => {
    const mapper = new NativeEventMapper()
    expect(mapper.map(standing(2, 900), times, 0)).toEqual([{ event: 'queued', data: { position: 2, predicted_start_ms: 900 } }])
    expect(mapper.map(standing(2, 900), times, 0)).toEqual([])
    expect(mapper.map(standing(1, 400), times, 0)).toEqual([{ event: 'queued', data: { position: 1, predicted_start_ms: 400 } }])
    const loading = {
      kind: 'queued' as const,
      standing: { position: 1, predictedStartMs: 400, loading: { reason: 'on_demand_start' as const, nodeId: 'n1', message: 'starting' } },
    }
    expect(mapper.map(loading, times, 0)).toEqual([{ event: 'loading', data: { reason: 'on_demand_start', node_id: 'n1', message: 'starting' } }])
    expect(mapper.map(loading, times, 0)).toEqual([])
  })

  it('says where the task started, relays choices as tokens, and ends with metrics then end', () => {
    const mapper = new NativeEventMapper()
    expect(mapper.map({ kind: 'granted', nodeId: 'node-a', attempt: 1 }, times, 1_500)).toEqual([])
    expect(mapper.map({ kind: 'started' }, times, 1_550)).toEqual([{ event: 'started', data: { node_id: 'node-a', attempt: 1, queue_wait_ms: 500 } }])
    const choices = [{ index: 0, delta: { content: 'hi', tool_calls: [{ index: 0, function: { arguments: '{' } }] } }]
    expect(mapper.map({ kind: 'deltas', seq: 0, chunks: [{ choices }, { choices: [], usage: null }] }, times, 1_600)).toEqual([
      { event: 'token', data: { choices } },
    ])
    const usage = { prompt_tokens: 3, completion_tokens: 20, total_tokens: 23 }
    expect(mapper.map({ kind: 'end', finish_reason: 'stop', usage }, times, 2_600)).toEqual([
      { event: 'metrics', data: { queue_wait_ms: 500, ttft_ms: 600, tokens_per_second: 20, completion_tokens: 20 } },
      { event: 'end', data: { finish_reason: 'stop', usage } },
    ])
  })
})

describe('encodeSseEvent', () => {
  it('writes id, event and one data line', () => {
    expect(new TextDecoder().decode(encodeSseEvent({ event: 'error', data: { code: 'cancelled', message: 'x', retriable: false } }, 7))).toBe(
      'id: 7\nevent: error\ndata: {"code":"cancelled","message":"x","retriable":false}\n\n',
    )
  })
})
