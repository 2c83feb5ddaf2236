import { LlorchError } from '../../protocol/index.ts'
import type { EngineEndpoint } from './serving-engine.ts'

/**
 * Asks the engine for a one-token chat completion: an engine whose health path answers while
 * its generation is wedged passes a health check, not this. Any answer but a server error counts
 * (a 4xx is the engine working through the request); no answer within the signal is a failure.
 */
export async function probeGeneration({
  endpoint,
  timeoutMs,
  signal,
}: {
  endpoint: Pick<EngineEndpoint, 'baseUrl' | 'modelName'>
  timeoutMs: number
  signal: AbortSignal
}): Promise<void> {
  const body = { model: endpoint.modelName, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1, stream: false }
  let status: number
  try {
    const response = await fetch(`${endpoint.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    })
    await response.arrayBuffer()
    status = response.status
  } catch (error) {
    if (signal.aborted) throw error
    throw new LlorchError(
      'engine_unavailable',
      `no answer to a one-token probe generation within ${timeoutMs} ms: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  if (status >= 500) throw new LlorchError('engine_unavailable', `the one-token probe generation answered HTTP ${status}`)
}
