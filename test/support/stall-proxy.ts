import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'

/** A TCP proxy on 127.0.0.1 that can stop passing bytes, as a stalled server does: connections open, nothing answers. */
export interface StallProxy {
  url: string
  stall(): void
  resume(): void
  close(): Promise<void>
}

export async function startStallProxy(target: URL): Promise<StallProxy> {
  let stalled = false
  const pairs = new Set<[Socket, Socket]>()
  const held = new Set<Socket>()
  const pipe = (client: Socket) => {
    const upstream = connect(Number(target.port), target.hostname)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.pipe(upstream)
    upstream.pipe(client)
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  }
  const server = createServer((client) => {
    if (!stalled) return pipe(client)
    client.pause()
    held.add(client)
    client.on('close', () => held.delete(client)).on('error', () => held.delete(client))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('the stall proxy has no port')
  return {
    url: `http://127.0.0.1:${address.port}`,
    stall() {
      stalled = true
      for (const [client, upstream] of pairs) {
        client.pause()
        upstream.pause()
      }
    },
    resume() {
      stalled = false
      for (const [client, upstream] of pairs) {
        client.resume()
        upstream.resume()
      }
      for (const client of held) {
        held.delete(client)
        client.resume()
        pipe(client)
      }
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      for (const client of held) client.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
