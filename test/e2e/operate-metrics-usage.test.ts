import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { DOWNLOAD_METRIC_NAMES, METRIC_NAMES } from '../../control-plane/metrics/fleet-families.ts'
import { CreateApiKeyResponse, FleetMetrics, NativeErrorBody, UsageReport } from '../../protocol/index.ts'
import { fakePoolInput } from '../support/agents.ts'
import { getPool, startLinkedAgent } from '../support/linked-agent.ts'
import { TEST_ADMIN_TOKEN, useStack } from '../support/local-stack.ts'
import type { Stack } from '../support/local-stack.ts'
import { histogramBuckets, parsePrometheus, sampleValue } from '../support/prometheus.ts'
import { useProcessCleanup, waitFor } from '../support/processes.ts'

const POOL = 'metered-model'
const CEILING_MS = 20_000

async function scrape(stack: Stack, token = TEST_ADMIN_TOKEN) {
  const response = await fetch(new URL('/metrics', stack.url), { headers: { Authorization: `Bearer ${token}` } })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePrometheus(await response.text())
}

async function usage(stack: Stack, query: string, token?: string) {
  const response = token
    ? await fetch(new URL(`/v2/usage/self${query}`, stack.url), { headers: { Authorization: `Bearer ${token}` } })
    : await stack.admin('GET', `/v2/usage${query}`)
  return { status: response.status, body: await response.json() }
}

describe('operating the fleet: /metrics and /v2/usage', () => {
  const cleanup = useProcessCleanup()
  const stackOf = useStack({ heartbeatIntervalMs: 200 })

  it('moves the pool and node counters after requests, keeps them across a control-plane restart, and totals usage per key, pool and day', async () => {
    const stack = stackOf()
    const agent = await startLinkedAgent(cleanup, stack, { name: 'metered-node', pools: [fakePoolInput(POOL, ['--tokens', '6'], { slots: 2 })] })
    await waitFor(async () => (await getPool(stack, POOL))?.state === 'ready', { timeoutMs: CEILING_MS, message: `pool ${POOL} ready` })
    const keys = await Promise.all(
      ['app-a', 'app-b'].map(async (name) =>
        CreateApiKeyResponse.parse(await (await stack.admin('POST', '/v2/api-keys', { name, scopes: ['inference'] })).json()),
      ),
    )

    const before = await scrape(stack)
    expect(sampleValue(before, 'llorch_pool_tasks_admitted_total', { pool: POOL })).toBe(0)
    expect(sampleValue(before, 'llorch_node_online', { node: agent.nodeId })).toBe(1)
    // The agent reads GPUs from the stand-in nvidia-smi on its PATH (two made-up GPUs).
    expect(sampleValue(before, 'llorch_node_gpu_memory_total_bytes', { node: agent.nodeId, gpu: '0' })).toBe(24564 * 1024 * 1024)
    expect(sampleValue(before, 'llorch_node_gpu_memory_used_bytes', { node: agent.nodeId, gpu: '1' })).toBe(0)
    expect(sampleValue(before, 'llorch_node_gpu_utilization_ratio', { node: agent.nodeId, gpu: '0', model: 'NVIDIA GeForce RTX 4090' })).toBe(0.37)
    expect(sampleValue(before, 'llorch_node_heartbeat_age_seconds', { node: agent.nodeId })).toBeLessThan(5)

    const runs = [
      { key: keys[0], n: 2 },
      { key: keys[1], n: 1 },
    ]
    for (const { key, n } of runs) {
      const openai = new OpenAI({ apiKey: key?.key ?? '', baseURL: new URL('/v1', stack.url).toString(), maxRetries: 0 })
      for (let i = 0; i < n; i++) {
        const stream = await openai.chat.completions.create({ model: POOL, stream: true, messages: [{ role: 'user', content: 'say hello there' }] })
        for await (const _chunk of stream);
      }
    }
    const unknownModel = await fetch(new URL('/v1/chat/completions', stack.url), {
      method: 'POST',
      headers: { Authorization: `Bearer ${keys[0]?.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(unknownModel.status).toBe(404)

    const after = await waitFor(
      async () => {
        const families = await scrape(stack)
        return sampleValue(families, 'llorch_pool_tasks_completed_total', { pool: POOL }) === 3 ? families : null
      },
      { timeoutMs: CEILING_MS, message: 'three completed tasks in /metrics' },
    )
    expect(sampleValue(after, 'llorch_pool_tasks_admitted_total', { pool: POOL })).toBe(3)
    expect(sampleValue(after, 'llorch_pool_completion_tokens_total', { pool: POOL })).toBe(18)
    expect(sampleValue(after, 'llorch_pool_prompt_tokens_total', { pool: POOL })).toBe(9)
    expect(sampleValue(after, 'llorch_pool_tasks_rejected_total', { pool: POOL, reason: 'queue_full' })).toBe(0)
    expect(sampleValue(after, 'llorch_pool_replicas', { pool: POOL, state: 'ready' })).toBe(1)
    expect(sampleValue(after, 'llorch_pool_slots', { pool: POOL })).toBe(2)
    expect(sampleValue(after, 'llorch_pool_slots_busy', { pool: POOL })).toBe(0)
    expect(histogramBuckets(after, 'llorch_pool_ttft_seconds')['+Inf']).toBe(3)
    expect(histogramBuckets(after, 'llorch_pool_queue_wait_seconds')['+Inf']).toBe(3)
    expect(sampleValue(after, 'llorch_node_connections_total', { node: agent.nodeId })).toBeGreaterThanOrEqual(1)
    // The download families have samples only while an agent fetches (test/e2e/agent-provision.test.ts).
    const alwaysShown = METRIC_NAMES.filter((name) => !DOWNLOAD_METRIC_NAMES.some((d) => d === name))
    expect(alwaysShown.length).toBe(METRIC_NAMES.length - DOWNLOAD_METRIC_NAMES.length)
    expect(after.map((f) => f.name)).toEqual(expect.arrayContaining(alwaysShown))
    for (const f of after) expect(f.help.length, `${f.name} has help`).toBeGreaterThan(0)

    // Pools write usage in batches (about every 2 s): poll until all three tasks are there.
    const all = await waitFor(
      async () => {
        const { body } = await usage(stack, '?group_by=key')
        const report = UsageReport.parse(body)
        return report.totals.requests === 3 ? report : null
      },
      { timeoutMs: CEILING_MS, message: 'three tasks in /v2/usage' },
    )
    expect(all.totals).toEqual({ requests: 3, prompt_tokens: 9, completion_tokens: 18, total_tokens: 27 })
    expect(all.groups).toEqual([
      { group: keys[0]?.id, requests: 2, prompt_tokens: 6, completion_tokens: 12, total_tokens: 18 },
      { group: keys[1]?.id, requests: 1, prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 },
    ])
    const today = new Date().toISOString().slice(0, 10)
    expect(UsageReport.parse((await usage(stack, `?group_by=day&pool=${POOL}`)).body).groups).toEqual([
      { group: today, requests: 3, prompt_tokens: 9, completion_tokens: 18, total_tokens: 27 },
    ])
    expect(UsageReport.parse((await usage(stack, `?key=${keys[1]?.id}`)).body).totals.requests).toBe(1)
    expect(UsageReport.parse((await usage(stack, '?from=2000-01-01&to=2000-01-02')).body).totals.requests).toBe(0)
    const self = UsageReport.parse((await usage(stack, '?group_by=pool', keys[0]?.key)).body)
    expect(self).toMatchObject({ key: keys[0]?.id, totals: { requests: 2, completion_tokens: 12 }, groups: [{ group: POOL, requests: 2 }] })

    const badGroup = await usage(stack, '?group_by=week')
    expect(badGroup.status).toBe(400)
    expect(NativeErrorBody.parse(badGroup.body).error.message).toContain('group_by')
    const badRange = await usage(stack, '?from=2026-02-01&to=2026-01-01')
    expect(badRange.status).toBe(400)
    expect(NativeErrorBody.parse(badRange.body).error.message).toContain('to: must be later than `from`')
    expect((await usage(stack, '?key=x', keys[0]?.key)).status).toBe(400)
    expect((await fetch(new URL('/v2/usage', stack.url), { headers: { Authorization: `Bearer ${keys[0]?.key}` } })).status).toBe(403)
    expect((await fetch(new URL('/metrics', stack.url))).status).toBe(401)

    const fleet = FleetMetrics.parse(await (await stack.admin('GET', '/v2/metrics')).json())
    expect(fleet.pools.find((p) => p.pool === POOL)).toMatchObject({ tasks_admitted: 3, completion_tokens: 18 })

    await stack.restartControlPlane()
    const restarted = await scrape(stack)
    expect(sampleValue(restarted, 'llorch_pool_tasks_completed_total', { pool: POOL })).toBe(3)
    expect(sampleValue(restarted, 'llorch_pool_completion_tokens_total', { pool: POOL })).toBe(18)
  })
})
