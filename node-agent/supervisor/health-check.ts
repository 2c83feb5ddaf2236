import { setTimeout as delay } from 'node:timers/promises'

/** Longest wait for one health answer. */
export const HEALTH_PROBE_TIMEOUT_MS = 5_000

export type HealthProbe = { ok: true } | { ok: false; detail: string }

/**
 * One GET of an engine's health endpoint: ok on 200. A refused connection is normal while vLLM
 * loads; a 503 is normal while llama.cpp loads.
 */
export async function probeHealth({
  url,
  timeoutMs = HEALTH_PROBE_TIMEOUT_MS,
  signal,
}: {
  url: string
  timeoutMs?: number
  signal?: AbortSignal
}): Promise<HealthProbe> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]
  try {
    const response = await fetch(url, { signal: AbortSignal.any(signals), headers: { connection: 'close' } })
    await response.body?.cancel()
    return response.status === 200 ? { ok: true } : { ok: false, detail: `HTTP ${response.status}` }
  } catch (error) {
    const cause: unknown = error instanceof Error ? error.cause : undefined
    const code: unknown = Reflect.get(Object(cause), 'code')
    if (typeof code === 'string') return { ok: false, detail: code }
    return { ok: false, detail: error instanceof Error ? (error.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : error.message) : String(error) }
  }
}

export type HealthWait = { outcome: 'healthy' } | { outcome: 'timeout'; lastDetail: string } | { outcome: 'aborted' }

/**
 * Polls `url` every `intervalMs` until it answers 200, `timeoutMs` passes, or `signal` aborts
 * (the engine exited, or a drain wants it stopped).
 */
export async function waitUntilHealthy({
  url,
  timeoutMs,
  intervalMs,
  signal,
}: {
  url: string
  timeoutMs: number
  intervalMs: number
  signal: AbortSignal
}): Promise<HealthWait> {
  const deadline = Date.now() + timeoutMs
  let lastDetail = 'no answer yet'
  while (!signal.aborted) {
    const left = deadline - Date.now()
    if (left <= 0) return { outcome: 'timeout', lastDetail }
    const probe = await probeHealth({ url, timeoutMs: Math.min(HEALTH_PROBE_TIMEOUT_MS, left), signal })
    if (signal.aborted) break
    if (probe.ok) return { outcome: 'healthy' }
    lastDetail = probe.detail
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => {})
  }
  return { outcome: 'aborted' }
}
