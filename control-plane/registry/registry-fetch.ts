/** Longest wait for one registry round trip; past it the request is answered `registry_unavailable`. */
export const REGISTRY_TIMEOUT_MS = 5_000

/** The registry did not answer (refused, timed out, or failed on its side). */
export class RegistryUnavailableError extends Error {
  override readonly name = 'RegistryUnavailableError'
}

/**
 * The fetch the Worker's libSQL client uses: bounded by `timeoutMs`, and failing with a
 * `RegistryUnavailableError` that the error handler turns into a 503, never a hang or a 500.
 */
export function registryFetch(timeoutMs: number = REGISTRY_TIMEOUT_MS): (request: Request) => Promise<Response> {
  return async function fetchRegistry(request) {
    let response: Response
    try {
      response = await fetch(request, { signal: AbortSignal.timeout(timeoutMs) })
    } catch (error) {
      throw new RegistryUnavailableError(`the registry did not answer within ${timeoutMs} ms: ${String(error)}`, { cause: error })
    }
    if (response.status >= 500) throw new RegistryUnavailableError(`the registry answered ${response.status}`)
    return response
  }
}

/** Whether `error`, or anything that caused it, is the registry being unavailable. */
export function isRegistryUnavailable(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof RegistryUnavailableError) return true
  }
  return false
}
