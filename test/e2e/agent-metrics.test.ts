import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { CreateApiKeyResponse } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { useStack } from '../support/local-stack.ts'
import { parsePrometheus, sampleValue } from '../support/prometheus.ts'
import { useProcessCleanup, waitFor } from '../support/processes.ts'

const CEILING_MS = 20_000
const LogLine = z.object({ event: z.string(), url: z.string().optional() })

/** The URL the agent logged in its `agent.metrics_listening` line (JSON lines on stdout). */
function metricsUrl(output: string): string | null {
  const line = output.split('\n').find((l) => l.includes('"event":"agent.metrics_listening"'))
  return line ? (LogLine.parse(JSON.parse(line)).url ?? null) : null
}

describe("the agent's own /metrics", () => {
  const cleanup = useProcessCleanup()
  // Nothing here waits for a heartbeat; a slow one keeps a loaded machine from dropping the link (a second hello).
  const stackOf = useStack({ heartbeatIntervalMs: 1_000 })

  it('serves engine restarts, breaker state, relayed frames and bytes, and link reconnects on a loopback port', async () => {
    const stack = stackOf()
    const agent = await startLinkedAgent(cleanup, stack, {
      name: 'metrics-node',
      config: { metrics_port: 0 },
      pools: [
        fakePoolInput('good-model', ['--tokens', '8']),
        fakePoolInput('crashy-model', ['--crash-after-ms', '50'], { restart: { initial_delay_ms: 1, max_delay_ms: 5, max_crashes: 2 } }),
      ],
    })
    const url = await waitFor(() => metricsUrl(agent.output()), { timeoutMs: CEILING_MS, message: 'the agent.metrics_listening log line' })
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    const scrape = async () => {
      const response = await fetch(url)
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      return parsePrometheus(await response.text())
    }
    await waitFor(async () => (await getPool(stack, 'good-model'))?.state === 'ready', { timeoutMs: CEILING_MS, message: 'good-model ready' })

    const crashed = await waitFor(
      async () => {
        const families = await scrape()
        return sampleValue(families, 'llorch_agent_breaker_open', { pool: 'crashy-model' }) === 1 ? families : null
      },
      { timeoutMs: CEILING_MS, message: 'the breaker of crashy-model open in the agent metrics' },
    )
    expect(sampleValue(crashed, 'llorch_agent_engine_restarts_total', { pool: 'crashy-model' })).toBe(1)
    expect(sampleValue(crashed, 'llorch_agent_engine_restarts_total', { pool: 'good-model' })).toBe(0)
    expect(sampleValue(crashed, 'llorch_agent_breaker_open', { pool: 'good-model' })).toBe(0)
    expect(sampleValue(crashed, 'llorch_agent_replica_state', { pool: 'crashy-model', state: 'failed' })).toBe(1)
    expect(sampleValue(crashed, 'llorch_agent_link_connected')).toBe(1)
    expect(sampleValue(crashed, 'llorch_agent_link_frames_sent_total', { type: 'hello' })).toBe(1)
    expect(sampleValue(crashed, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)

    const { key } = CreateApiKeyResponse.parse(await (await stack.admin('POST', '/v2/api-keys', { name: 'agent-metrics', scopes: ['inference'] })).json())
    const openai = new OpenAI({ apiKey: key, baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0 })
    for await (const _chunk of await openai.chat.completions.create({ model: 'good-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
    const relayed = await scrape()
    expect(sampleValue(relayed, 'llorch_agent_link_frames_sent_total', { type: 'task_event' })).toBeGreaterThanOrEqual(3)
    expect(sampleValue(relayed, 'llorch_agent_link_bytes_sent_total', { type: 'task_event' })).toBeGreaterThan(100)
    expect(sampleValue(relayed, 'llorch_agent_link_reconnects_total')).toBe(0)

    await stack.restartControlPlane()
    const reconnected = await waitFor(
      async () => {
        const families = await scrape()
        return sampleValue(families, 'llorch_agent_link_frames_sent_total', { type: 'hello' }) === 2 &&
          sampleValue(families, 'llorch_agent_link_connected') === 1
          ? families
          : null
      },
      { timeoutMs: CEILING_MS, message: 'a second hello after the control plane restarted' },
    )
    expect(sampleValue(reconnected, 'llorch_agent_link_reconnects_total')).toBeGreaterThanOrEqual(1)
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404)
  })
})
