import { createServer } from 'node:net'

/** How many ports after a taken one are tried for the hint before it gives up naming one. */
const FREE_PORT_TRIES = 20
const MAX_PORT = 65_535

/** What Node (`EADDRINUSE`) and Miniflare (`ERR_ADDRESS_IN_USE`) throw for a port that is taken. */
export function isAddressInUse(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if ('code' in current && (current.code === 'EADDRINUSE' || current.code === 'ERR_ADDRESS_IN_USE')) return true
  }
  return false
}

/** Whether `host:port` can be listened on now: bound and closed again at once. */
function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** The first port after `port` on `host` that is free now, or null when none of the next few is. */
export async function freePortAfter(host: string, port: number): Promise<number | null> {
  for (let candidate = port + 1; candidate <= Math.min(port + FREE_PORT_TRIES, MAX_PORT); candidate++) {
    if (await canListen(host, candidate)) return candidate
  }
  return null
}

/**
 * Runs `listen`; when its port is taken, exits 1 with one line naming the environment variable
 * that moves it (and a port that was free a moment ago), instead of a stack trace suggesting a
 * flag `npm start` does not have.
 */
export async function listenOrExplain<T>(listen: () => Promise<T>, { host, port, variable }: { host: string; port: number; variable: string }): Promise<T> {
  try {
    return await listen()
  } catch (error) {
    if (!isAddressInUse(error)) throw error
    const free = await freePortAfter(host, port)
    const example = free === null ? `${variable}=0 npm start picks any free port` : `e.g. ${variable}=${free} npm start (0 picks any free port)`
    process.stderr.write(`npm start: ${host}:${port} is already in use (another npm start, or wrangler dev?). Set ${variable} to a free port, ${example}.\n`)
    process.exit(1)
  }
}
