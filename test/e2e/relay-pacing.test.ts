import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { startStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { CEILING_MS, createKey, openaiClient } from '../support/openai-stack.ts'
import { useProcessCleanup, waitFor } from '../support/processes.ts'

const TOKENS = 8
const delta = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`

/**
 * An engine that sends its next chunk only when told: the test tells it once the client has read
 * the previous one, so nothing but the relay's own promptness can carry the stream forward.
 */
function lockstepEngine(): { server: Server; next: () => void } {
  let stream: { res: ServerResponse; sent: number } | null = null
  const next = () => {
    if (!stream) return
    if (stream.sent === TOKENS) {
      stream.res.end(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`)
      stream = null
      return
    }
    stream.res.write(delta(`t${stream.sent++}`))
  }
  const server = createServer((req, res) => {
    if (req.method === 'GET') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}')
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    stream = { res, sent: 0 }
    next()
  })
  return { server, next }
}

describe('relay pacing', () => {
  const cleanup = useProcessCleanup()
  let stack: Stack
  let engine: ReturnType<typeof lockstepEngine>
  beforeEach(async () => {
    stack = await startStack()
    engine = lockstepEngine()
    await new Promise<void>((resolve) => engine.server.listen(0, '127.0.0.1', resolve))
  })
  afterEach(async () => {
    engine.server.close()
    await stack.stop()
  })

  it('delivers each chunk of a paced engine to the client before the engine sends the next, one chunk each', async () => {
    const address = engine.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const agent = await startLinkedAgent(cleanup, stack, { name: 'node-paced', pools: [{ id: 'paced', engine: 'openai', port, health_interval_ms: 20 }] })
    await waitFor(async () => (await getPool(stack, 'paced'))?.replicas.some((r) => r.node_id === agent.nodeId && r.state === 'ready'), {
      timeoutMs: CEILING_MS,
      message: 'a ready replica of paced',
    })
    const openai = openaiClient(stack, (await createKey(stack)).key)

    const seen: string[] = []
    const stream = await openai.chat.completions.create({ model: 'paced', messages: [{ role: 'user', content: 'go' }], stream: true })
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta.content
      if (content) seen.push(content)
      engine.next()
    }
    expect(seen).toEqual(Array.from({ length: TOKENS }, (_, i) => `t${i}`))
  })
})
