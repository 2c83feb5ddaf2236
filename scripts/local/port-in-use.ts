/** What Node (`EADDRINUSE`) and Miniflare (`ERR_ADDRESS_IN_USE`) throw for a port that is taken. */
function isAddressInUse(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if ('code' in current && (current.code === 'EADDRINUSE' || current.code === 'ERR_ADDRESS_IN_USE')) return true
  }
  return false
}

/**
 * Runs `listen`; when its port is taken, exits 1 with one line naming the environment variable
 * that moves it, instead of a stack trace suggesting a flag `npm start` does not have.
 */
export async function listenOrExplain<T>(listen: () => Promise<T>, { host, port, variable }: { host: string; port: number; variable: string }): Promise<T> {
  try {
    return await listen()
  } catch (error) {
    if (!isAddressInUse(error)) throw error
    process.stderr.write(`npm start: ${host}:${port} is already in use (another npm start, or wrangler dev?). Set ${variable} to a free port, e.g. ${variable}=${port + 1} npm start (0 picks any free port).\n`)
    process.exit(1)
  }
}
