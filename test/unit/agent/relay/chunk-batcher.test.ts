import { describe, expect, it } from 'vitest'
import { MAX_CHUNKS_PER_BATCH } from '../../../../protocol/index.ts'
import { LlorchError } from '../../../../protocol/index.ts'
import { ChunkBatcher } from '../../../../node-agent/relay/chunk-batcher.ts'
import type { ChunkBatcherOptions, RelayItem } from '../../../../node-agent/relay/chunk-batcher.ts'
import type { RawChunk } from '../../../../node-agent/relay/chunk-merge.ts'

async function collect(batcher: ChunkBatcher): Promise<RelayItem[]> {
  const items: RelayItem[] = []
  for await (const item of batcher.items()) items.push(item)
  return items
}

const batcherWith = (options: Partial<ChunkBatcherOptions> = {}) => new ChunkBatcher({ highWaterBytes: 1e6, ...options })
const text = (t: string, index = 0): RawChunk => ({ choices: [{ index, delta: { content: t } }] })
const role = (): RawChunk => ({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] })
const end = { kind: 'end', finishReason: 'stop', usage: null } as const

describe('chunk batcher', () => {
  it('merges chunks that arrive while the consumer is busy into one batch', async () => {
    const batcher = batcherWith()
    batcher.start()
    for (const t of ['a', 'b', 'c']) batcher.push(text(t), 10)
    batcher.finish(end)
    expect(await collect(batcher)).toEqual([{ kind: 'started' }, { kind: 'chunks', chunks: [text('abc')] }, end])
  })

  it('sends output as soon as the consumer asks, with the role chunk that waited for it, and merges what arrives meanwhile', async () => {
    const batcher = batcherWith()
    const items = batcher.items()
    batcher.push(role(), 10)
    batcher.push(text('a'), 10)
    expect((await items.next()).value).toEqual({ kind: 'chunks', chunks: [{ choices: [{ index: 0, delta: { role: 'assistant', content: 'a' } }] }] })
    for (const t of ['b', 'c']) batcher.push(text(t), 10)
    batcher.finish(end)
    expect((await items.next()).value).toEqual({ kind: 'chunks', chunks: [text('bc')] })
    expect((await items.next()).value).toEqual(end)
  })

  it('drops a role-only chunk when an error comes before any output, so the task may still fail over', async () => {
    const batcher = batcherWith()
    batcher.push(role(), 10)
    const error = new LlorchError('engine_error', 'engine died', { retriable: true })
    batcher.finish({ kind: 'error', error })
    expect(await collect(batcher)).toEqual([{ kind: 'error', error }])
  })

  it('sends pending output before the error that ends the task', async () => {
    const batcher = batcherWith()
    const items = batcher.items()
    batcher.push(text('a'), 10)
    await items.next()
    batcher.push(text('b'), 10)
    const error = new LlorchError('engine_error', 'engine died')
    batcher.finish({ kind: 'error', error })
    expect((await items.next()).value).toEqual({ kind: 'chunks', chunks: [text('b')] })
    expect((await items.next()).value).toEqual({ kind: 'error', error })
  })

  it('hands each chunk over on its own when the consumer is waiting for it', async () => {
    const batcher = batcherWith()
    const items = batcher.items()
    for (const t of ['a', 'b', 'c']) {
      const next = items.next()
      batcher.push(text(t), 1)
      expect((await next).value).toEqual({ kind: 'chunks', chunks: [text(t)] })
    }
    await items.return(undefined)
  })

  it('holds a role-only chunk back while the consumer waits, until output follows', async () => {
    const batcher = batcherWith()
    const items = batcher.items()
    const next = items.next()
    batcher.push(role(), 1)
    let settled = false
    void next.then(() => (settled = true))
    await Promise.resolve()
    expect(settled).toBe(false)
    batcher.push(text('a'), 1)
    expect((await next).value).toEqual({ kind: 'chunks', chunks: [{ choices: [{ index: 0, delta: { role: 'assistant', content: 'a' } }] }] })
    await items.return(undefined)
  })

  it('splits chunks that cannot merge into batches the protocol carries', async () => {
    const batcher = batcherWith()
    const usage = (n: number): RawChunk => ({
      choices: [{ index: 0, delta: { content: 'x' } }],
      usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1 },
    })
    batcher.start()
    const total = MAX_CHUNKS_PER_BATCH + 5
    for (let n = 0; n < total; n++) batcher.push(usage(n), 1)
    batcher.finish(end)
    const sizes = (await collect(batcher)).flatMap((item) => (item.kind === 'chunks' ? [item.chunks.length] : []))
    expect(sizes.every((size) => size <= MAX_CHUNKS_PER_BATCH)).toBe(true)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total)
  })

  it('keeps the first terminal item and asks the producer to pause past the high-water mark', async () => {
    const pressure: boolean[] = []
    const batcher = batcherWith({ highWaterBytes: 3, onPressure: (p) => pressure.push(p) })
    batcher.push(text('abcd'), 4)
    expect(pressure).toEqual([true])
    batcher.finish({ kind: 'end', finishReason: 'length', usage: null })
    batcher.push(text('ignored'), 7)
    batcher.finish(end)
    expect(await collect(batcher)).toEqual([
      { kind: 'chunks', chunks: [text('abcd')] },
      { kind: 'end', finishReason: 'length', usage: null },
    ])
    expect(pressure).toEqual([true, false])
  })
})
