import { streamOnce } from './stream-request.ts'
import type { StreamSample, StreamTarget } from './stream-request.ts'

export interface LoadRun {
  samples: StreamSample[]
  /** First request sent → last stream done. */
  wallMs: number
}

/** Sends `requests` streaming requests to `target`, at most `concurrency` in flight at once. */
export async function runLoad({
  target,
  requests,
  concurrency,
  tokens,
}: {
  target: StreamTarget
  requests: number
  concurrency: number
  tokens: number
}): Promise<LoadRun> {
  const samples: StreamSample[] = []
  let issued = 0
  const lane = async () => {
    while (issued < requests) {
      issued += 1
      samples.push(await streamOnce(target, tokens))
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, lane))
  return { samples, wallMs: performance.now() - started }
}
