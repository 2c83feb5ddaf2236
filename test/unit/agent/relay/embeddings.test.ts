import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { relayEmbeddings, sliceVectors } from '../../../../node-agent/relay/embeddings.ts'
import type { EmbeddingOptions } from '../../../../node-agent/relay/embeddings.ts'
import type { TaskEvent } from '../../../../protocol/index.ts'
import { embeddingOf } from '../../../fixtures/fake-engine-output.ts'
import { startFakeEngine, useProcessCleanup } from '../../../support/processes.ts'
import type { FakeEngineHandle } from '../../../support/processes.ts'

async function collect(options: EmbeddingOptions): Promise<TaskEvent[]> {
  const events: TaskEvent[] = []
  for await (const event of relayEmbeddings(options)) events.push(event)
  return events
}

describe('embeddings through the agent', () => {
  const cleanup = useProcessCleanup()
  let engine: FakeEngineHandle
  const pids: number[] = []
  beforeAll(async () => {
    engine = await startFakeEngine(['--embedding-dims', '4', '--model-name', 'served-name'], (pid) => pids.push(pid))
  })
  afterAll(() => {
    for (const pid of pids) process.kill(pid, 'SIGKILL')
  })

  it('posts to the engine under its own model name and yields its vectors, the rest of its reply and usage', async () => {
    const events = await collect({
      endpoint: { pool: 'p', baseUrl: engine.baseUrl, modelName: 'served-name' },
      body: { model: 'p', input: ['one two', 'three'], user: 'u-1' },
    })
    expect(events).toEqual([
      { kind: 'started' },
      {
        kind: 'embeddings',
        seq: 0,
        data: [
          { object: 'embedding', index: 0, embedding: embeddingOf('one two', 4) },
          { object: 'embedding', index: 1, embedding: embeddingOf('three', 4) },
        ],
        reply: { object: 'list', model: 'served-name', usage: { prompt_tokens: 3, total_tokens: 3 } },
      },
      { kind: 'end', finish_reason: null, usage: { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 } },
    ])
    expect((await engine.stats()).last_body).toEqual({ model: 'served-name', input: ['one two', 'three'], user: 'u-1' })
  })

  it('says the model serves no embeddings when the engine lacks the route', async () => {
    for (const status of ['501', '404']) {
      const plain = await startFakeEngine(['--refuse-embeddings', status], cleanup.track)
      const events = await collect({ endpoint: { pool: 'p', baseUrl: plain.baseUrl, modelName: 'm' }, body: { model: 'p', input: 'x' } })
      expect(events).toEqual([
        {
          kind: 'error',
          code: 'invalid_request',
          message: expect.stringMatching(new RegExp(`^the model "p" does not serve embeddings: engine of pool "p" answered HTTP ${status}: `)),
          retriable: false,
        },
      ])
    }
  })

  it('slices many vectors into events of bounded size, in order', () => {
    const data = Array.from({ length: 10 }, (_, index) => ({ index, embedding: [index, index] }))
    const slices = sliceVectors(data, 60)
    expect(slices.length).toBeGreaterThan(1)
    expect(slices.flat()).toEqual(data)
    const bytes = (slice: unknown[]) => slice.reduce((sum: number, item) => sum + JSON.stringify(item).length, 0)
    for (const slice of slices) expect(bytes(slice)).toBeLessThanOrEqual(60)
    expect(sliceVectors([])).toEqual([[]])
  })
})
