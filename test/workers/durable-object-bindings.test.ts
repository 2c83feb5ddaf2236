import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'

describe('Durable Object bindings', () => {
  it('reaches a fresh PoolObject by pool name and finds its queue empty', async () => {
    const stub = env.POOLS.getByName(`pool-${crypto.randomUUID()}`)
    expect(await stub.status()).toEqual({ queueDepth: 0, replicas: [], lifecycle: { maintenanceDrained: false, rollingReload: null } })
  })

  it('reaches a NodeObject by node id, which knows its own name, and reports that no agent is connected', async () => {
    const nodeId = `node-${crypto.randomUUID()}`
    const stub = env.NODES.getByName(nodeId)
    expect(await stub.command({ command: 'preload', pool: 'any' })).toEqual({
      ok: false,
      error: { code: 'node_lost', message: `node ${nodeId} has no agent connected` },
    })
  })
})
