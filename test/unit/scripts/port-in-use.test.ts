import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { freePortAfter } from '../../../scripts/local/port-in-use.ts'

const HOST = '127.0.0.1'

function listen(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(null))
    server.listen({ host: HOST, port }, () => resolve(server))
  })
}

describe('freePortAfter, the port npm start suggests when its own is taken', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
  })

  it('skips the next ports when they are taken too', async () => {
    // Find a run of three free ports, then take the first two.
    let base = 0
    for (let tries = 0; tries < 50 && base === 0; tries++) {
      const probe = await listen(0)
      if (!probe) continue
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      await new Promise((resolve) => probe.close(resolve))
      const first = await listen(port)
      const second = await listen(port + 1)
      for (const s of [first, second]) if (s) servers.push(s)
      if (first && second && port + 2 <= 65_535) base = port
      else await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
    }
    expect(base).toBeGreaterThan(0)
    const suggested = await freePortAfter(HOST, base)
    expect(suggested).not.toBeNull()
    expect(suggested).toBeGreaterThan(base + 1)
    // It was free: something can listen on it.
    const check = await listen(suggested ?? 0)
    expect(check).not.toBeNull()
    if (check) servers.push(check)
  })
})
