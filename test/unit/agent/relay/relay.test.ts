import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { relay } from '../../../../node-agent/relay/relay.ts'
import type { RelayOptions } from '../../../../node-agent/relay/relay.ts'
import { LlorchError } from '../../../../protocol/index.ts'
import type { TaskEvent } from '../../../../protocol/index.ts'
import { seqsOf, textOf } from '../../../support/agents.ts'
import { startFakeEngine, useProcessCleanup, waitFor } from '../../../support/processes.ts'
import type { FakeEngineHandle } from '../../../support/processes.ts'

const chat = { model: 'whatever', messages: [{ role: 'user' as const, content: 'hello there' }] }

async function collect(options: RelayOptions): Promise<TaskEvent[]> {
  const events: TaskEvent[] = []
  for await (const event of relay(options)) events.push(event)
  return events
}

const text = (events: TaskEvent[]) => textOf(events)

describe('relay against the fake engine', () => {
  const cleanup = useProcessCleanup()
  let engine: FakeEngineHandle
  const pids: number[] = []

  beforeAll(async () => {
    engine = await startFakeEngine(['--tokens', '5', '--tokens-per-second', '500', '--model-name', 'served-name'], (pid) => pids.push(pid))
  })
  afterAll(() => {
    for (const pid of pids) process.kill(pid, 'SIGKILL')
  })

  const endpoint = () => ({ pool: 'p', baseUrl: engine.baseUrl, modelName: 'served-name' })

  it('yields started, batches of the engine chunks in order and the end with usage, asking the engine for usage itself', async () => {
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    expect(events[0]).toEqual({ kind: 'started' })
    expect(text(events)).toBe('tok0 tok1 tok2 tok3 tok4')
    const numbers = seqsOf(events)
    expect(numbers.length).toBeGreaterThan(0)
    expect(numbers).toEqual(numbers.map((_, i) => i))
    expect(events.at(-1)).toEqual({ kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 } })
    const body = (await engine.stats()).last_body
    expect(body).toMatchObject({ model: 'served-name', stream: true, stream_options: { include_usage: true } })
  })

  it('relays /v1/completions and ends with length when max_tokens cuts it short', async () => {
    const events = await collect({ endpoint: endpoint(), route: 'completions', body: { model: 'x', prompt: 'a b c', max_tokens: 3 } })
    expect(text(events)).toBe('tok0 tok1 tok2')
    expect(events.at(-1)).toEqual({ kind: 'end', finish_reason: 'length', usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } })
  })

  it('aborts the engine request when the signal aborts, and the engine sees the disconnect', async () => {
    const slow = await startFakeEngine(['--tokens', '1000', '--tokens-per-second', '100'], cleanup.track)
    const controller = new AbortController()
    const events: TaskEvent[] = []
    for await (const event of relay({
      endpoint: { pool: 'p', baseUrl: slow.baseUrl, modelName: 'm' },
      route: 'chat',
      body: chat,
      signal: controller.signal,
    })) {
      events.push(event)
      if (event.kind === 'deltas') controller.abort(new LlorchError('cancelled', 'client went away'))
    }
    expect(events.at(-1)).toEqual({ kind: 'error', code: 'cancelled', message: 'client went away', retriable: false })
    await waitFor(
      async () => {
        const s = await slow.stats()
        return s.aborted === 1 && s.active === 0
      },
      { message: 'the fake engine to record the abort' },
    )
    expect((await slow.stats()).completed).toBe(0)
  })

  it('reports a typed, retriable error when the engine is still loading', async () => {
    const loading = await startFakeEngine(['--load-ms', '60000'], cleanup.track)
    const events = await collect({ endpoint: { pool: 'p', baseUrl: loading.baseUrl, modelName: 'm' }, route: 'chat', body: chat })
    expect(events).toEqual([{ kind: 'error', code: 'engine_unavailable', message: 'engine of pool "p" answered HTTP 503: Loading model', retriable: true }])
  })

  it('reports the mid-stream error object an engine sends instead of [DONE]', async () => {
    const broken = await startFakeEngine(['--error-after-tokens', '2'], cleanup.track)
    const events = await collect({ endpoint: { pool: 'p', baseUrl: broken.baseUrl, modelName: 'm' }, route: 'chat', body: chat })
    expect(text(events)).toBe('tok0 tok1')
    expect(events.at(-1)).toEqual({
      kind: 'error',
      code: 'engine_error',
      message: 'engine of pool "p" reported an error mid-stream: fake engine failed to parse its own output',
      retriable: false,
    })
  })

  it('reports an engine that cannot be reached as unavailable', async () => {
    const events = await collect({ endpoint: { pool: 'p', baseUrl: 'http://127.0.0.1:1', modelName: 'm' }, route: 'chat', body: chat })
    expect(events).toEqual([
      {
        kind: 'error',
        code: 'engine_unavailable',
        message: 'cannot reach the engine of pool "p" at http://127.0.0.1:1/v1/chat/completions: ECONNREFUSED',
        retriable: true,
      },
    ])
  })
})

describe('relay SSE parsing', () => {
  let server: Server
  let baseUrl = ''
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {}
  let connections = 0
  let resetFirstConnections = 0

  beforeAll(async () => {
    server = createServer((req, res) => handler(req, res))
    server.on('connection', (socket) => {
      connections++
      if (connections <= resetFirstConnections) socket.destroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  })
  afterEach(() => {
    connections = 0
    resetFirstConnections = 0
  })
  afterAll(() => server.close())

  const stream =
    (...pieces: string[]) =>
    (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let i = 0
      const next = () => {
        const piece = pieces[i++]
        if (piece === undefined) return res.end()
        res.write(piece)
        setImmediate(next)
      }
      next()
    }
  /** All pieces in one write, so they reach the relay together and merge into one batch. */
  const burst =
    (...pieces: string[]) =>
    (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(pieces.join(''))
    }
  const endpoint = () => ({ pool: 'p', baseUrl, modelName: 'm' })
  const delta = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}\n\n`

  it('ignores comment lines and joins data lines split across packets', async () => {
    const first = delta('Hel')
    handler = stream(
      ': ping\n\n',
      first.slice(0, 17),
      first.slice(17),
      ': another ping\n\n',
      delta('lo'),
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n',
      'data: [DONE]\n\n',
    )
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    expect(text(events)).toBe('Hello')
    expect(events.at(-1)).toEqual({ kind: 'end', finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })
  })

  it('hands each chunk of a paced engine on before the engine sends the next, one batch per chunk', async () => {
    let sendNext: () => void = () => {}
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let i = 0
      sendNext = () => {
        if (i === 5) return res.end('data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        res.write(delta(`t${i++}`))
      }
      sendNext()
    }
    const batches: string[] = []
    for await (const event of relay({ endpoint: endpoint(), route: 'chat', body: chat })) {
      if (event.kind !== 'deltas') continue
      batches.push(textOf([event]))
      sendNext()
    }
    expect(batches).toEqual(['t0', 't1', 't2', 't3', 't4', ''])
  })

  it('ends with no usage when the engine sends none', async () => {
    handler = stream(delta('a'), 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', 'data: [DONE]\n\n')
    expect((await collect({ endpoint: endpoint(), route: 'chat', body: chat })).at(-1)).toEqual({ kind: 'end', finish_reason: 'stop', usage: null })
  })

  it('reports a stream closed before its end, retriable only while no token was sent', async () => {
    handler = stream(': hello\n\n')
    expect((await collect({ endpoint: endpoint(), route: 'chat', body: chat })).at(-1)).toMatchObject({ kind: 'error', code: 'engine_error', retriable: true })
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(delta('partial'))
      setTimeout(() => res.destroy(), 5)
    }
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    expect(text(events)).toBe('partial')
    expect(events.at(-1)).toEqual({ kind: 'error', code: 'engine_error', message: 'engine of pool "p" closed the connection mid-stream', retriable: false })
  })

  it('retries once on a fresh connection when the first is reset before any response byte', async () => {
    resetFirstConnections = 1
    handler = stream(delta('ok'), 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', 'data: [DONE]\n\n')
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    expect(text(events)).toBe('ok')
    expect(connections).toBe(2)
  })

  it('relays tool calls, reasoning, logprobs and fields it does not know, without the identity the Worker rewrites', async () => {
    const line = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`
    const head = { id: 'engine-id', object: 'chat.completion.chunk', created: 5, model: 'engine-model', system_fingerprint: 'fp' }
    const entry = { token: 'x', logprob: -1, bytes: [120], top_logprobs: [] }
    handler = burst(
      line({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: null, reasoning_content: 'hm' }, logprobs: null, finish_reason: null }] }),
      line({
        ...head,
        choices: [
          {
            index: 0,
            delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] },
            logprobs: { content: [entry] },
            finish_reason: null,
          },
        ],
      }),
      line({
        ...head,
        choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] }, finish_reason: null, engine_note: { kept: true } }],
      }),
      line({ ...head, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
      line({ ...head, choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, timings: { ms: 4 } }),
      'data: [DONE]\n\n',
    )
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    const chunks = events.flatMap((e) => (e.kind === 'deltas' ? e.chunks : []))
    expect(chunks).toEqual([
      {
        system_fingerprint: 'fp',
        choices: [
          {
            index: 0,
            delta: {
              role: 'assistant',
              content: null,
              reasoning_content: 'hm',
              tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }],
            },
            logprobs: { content: [entry] },
            finish_reason: null,
          },
        ],
      },
      {
        system_fingerprint: 'fp',
        choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] }, finish_reason: null, engine_note: { kept: true } }],
      },
      { system_fingerprint: 'fp', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
      { system_fingerprint: 'fp', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, timings: { ms: 4 } },
    ])
    expect(events.at(-1)).toEqual({ kind: 'end', finish_reason: 'tool_calls', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })
  })

  it('ends the task with an engine error when a chunk is not one the protocol carries', async () => {
    handler = stream('data: {"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}\n\n', 'data: [DONE]\n\n')
    const events = await collect({ endpoint: endpoint(), route: 'chat', body: chat })
    expect(events.at(-1)).toMatchObject({
      kind: 'error',
      code: 'engine_error',
      retriable: false,
      message: expect.stringContaining('choices[0].delta.tool_calls[0].index'),
    })
    handler = stream('data: {"choices":[{"delta":{"content":"no index"}}]}\n\n', 'data: [DONE]\n\n')
    expect((await collect({ endpoint: endpoint(), route: 'chat', body: chat })).at(-1)).toMatchObject({
      kind: 'error',
      code: 'engine_error',
      message: expect.stringContaining('integer index'),
    })
  })

  it('turns a 400 from the engine into invalid_request with its message', async () => {
    handler = (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end('{"error":{"code":400,"message":"the request exceeds the available context size"}}')
    }
    expect(await collect({ endpoint: endpoint(), route: 'chat', body: chat })).toEqual([
      {
        kind: 'error',
        code: 'invalid_request',
        message: 'engine of pool "p" answered HTTP 400: the request exceeds the available context size',
        retriable: false,
      },
    ])
  })
})
