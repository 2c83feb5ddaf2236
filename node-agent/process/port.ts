import { createServer } from 'node:net'

/**
 * A port for an engine: the configured one, or for `auto` one the kernel reports free on `host`
 * right now. Another process could take it before the engine binds; the engine then fails to start
 * and the supervisor's restart picks a new one.
 */
export async function resolvePort({ port, host }: { port: number | 'auto'; host: string }): Promise<number> {
  if (port !== 'auto') return port
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error(`could not read the port bound on ${host}`))
      })
    })
  })
}

/** `http://127.0.0.1:8080`, with IPv6 hosts in brackets. */
export function httpBaseUrl({ host, port }: { host: string; port: number }): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}
