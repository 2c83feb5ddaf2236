import { describe, expect, it } from 'vitest'
import { TokenBatcher } from '../../../../node-agent/relay/token-batcher.ts'
import type { RelayItem } from '../../../../node-agent/relay/token-batcher.ts'

async function collect(batcher: TokenBatcher): Promise<RelayItem[]> {
  const items: RelayItem[] = []
  for await (const item of batcher.items()) items.push(item)
  return items
}

describe('token batcher', () => {
  it('joins deltas that arrive within the flush interval into one batch', async () => {
    const batcher = new TokenBatcher({ flushIntervalMs: 1e6, flushChars: 1e6, highWaterChars: 1e6 })
    batcher.start()
    for (const t of ['a', 'b', 'c']) batcher.push(t)
    batcher.finish({ kind: 'end', finishReason: 'stop', usage: null })
    expect(await collect(batcher)).toEqual([{ kind: 'started' }, { kind: 'text', text: 'abc' }, { kind: 'end', finishReason: 'stop', usage: null }])
  })

  it('sends the first text at once, without waiting for the flush interval, and batches the rest', async () => {
    const batcher = new TokenBatcher({ flushIntervalMs: 1e6, flushChars: 1e6, highWaterChars: 1e6 })
    const items = batcher.items()
    batcher.push('a')
    expect((await items.next()).value).toEqual({ kind: 'text', text: 'a' })
    for (const t of ['b', 'c']) batcher.push(t)
    batcher.finish({ kind: 'end', finishReason: 'stop', usage: null })
    expect((await items.next()).value).toEqual({ kind: 'text', text: 'bc' })
    expect((await items.next()).value).toEqual({ kind: 'end', finishReason: 'stop', usage: null })
  })

  it('sends a batch once it reaches the size limit', async () => {
    const batcher = new TokenBatcher({ flushIntervalMs: 1e6, flushChars: 4, highWaterChars: 1e6 })
    const items = batcher.items()
    batcher.push('ab')
    batcher.push('cd')
    expect((await items.next()).value).toEqual({ kind: 'text', text: 'abcd' })
    await items.return(undefined)
  })

  it('sends a small batch when the timer fires', async () => {
    const batcher = new TokenBatcher({ flushIntervalMs: 1, flushChars: 1e6, highWaterChars: 1e6 })
    const items = batcher.items()
    batcher.push('x')
    expect((await items.next()).value).toEqual({ kind: 'text', text: 'x' })
    await items.return(undefined)
  })

  it('keeps the first terminal item and asks the producer to pause past the high-water mark', async () => {
    const pressure: boolean[] = []
    const batcher = new TokenBatcher({ flushIntervalMs: 1e6, flushChars: 1e6, highWaterChars: 3, onPressure: (p) => pressure.push(p) })
    batcher.push('abcd')
    expect(pressure).toEqual([true])
    batcher.finish({ kind: 'end', finishReason: 'length', usage: null })
    batcher.push('ignored')
    batcher.finish({ kind: 'end', finishReason: 'stop', usage: null })
    expect(await collect(batcher)).toEqual([{ kind: 'text', text: 'abcd' }, { kind: 'end', finishReason: 'length', usage: null }])
    expect(pressure).toEqual([true, false])
  })
})
