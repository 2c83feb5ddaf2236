import type { LoadRun } from './load-runner.ts'

/** One path of one scenario, summarized. Times in ms, rates in tokens/s, over successful streams. */
export interface PathStats {
  requests: number
  errors: number
  /** The first error seen, to tell what went wrong. */
  firstError: string | null
  tokens: number
  wallMs: number
  ttftMs: { p50: number; p95: number } | null
  /** Each stream's tokens over its whole duration (request sent → `[DONE]`). */
  streamTokensPerSecond: { p50: number; p5: number } | null
  streamMs: { p50: number; p95: number } | null
  /** Every successful stream's tokens over the wall time. */
  aggregateTokensPerSecond: number
  /** Successful requests over the wall time. */
  requestsPerSecond: number
}

/** Nearest-rank percentile of `values`, which must not be empty. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? Number.NaN
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

export function summarize({ samples, wallMs }: LoadRun): PathStats {
  const ok = samples.filter((s) => s.error === null)
  const ttfts = ok.flatMap((s) => (s.ttftMs === null ? [] : [s.ttftMs]))
  const rates = ok.map((s) => s.tokens / (s.durationMs / 1000))
  const durations = ok.map((s) => s.durationMs)
  const tokens = ok.reduce((sum, s) => sum + s.tokens, 0)
  return {
    requests: samples.length,
    errors: samples.length - ok.length,
    firstError: samples.find((s) => s.error !== null)?.error ?? null,
    tokens,
    wallMs: round(wallMs, 1),
    ttftMs: ttfts.length > 0 ? { p50: round(percentile(ttfts, 50)), p95: round(percentile(ttfts, 95)) } : null,
    streamTokensPerSecond: rates.length > 0 ? { p50: round(percentile(rates, 50), 0), p5: round(percentile(rates, 5), 0) } : null,
    streamMs: durations.length > 0 ? { p50: round(percentile(durations, 50)), p95: round(percentile(durations, 95)) } : null,
    aggregateTokensPerSecond: round(tokens / (wallMs / 1000), 0),
    requestsPerSecond: round(ok.length / (wallMs / 1000), 0),
  }
}

/** relay ÷ direct for each metric; null where either side has no value. */
export interface PathRatios {
  ttftP50: number | null
  ttftP95: number | null
  streamTokensPerSecond: number | null
  aggregateTokensPerSecond: number | null
  requestsPerSecond: number | null
  wall: number | null
  /** relay − direct, in ms: what the relay adds to the p50 time to first token, and to the last (`[DONE]`). */
  addedTtftMsP50: number | null
  addedLastTokenMsP50: number | null
}

const ratio = (relay: number | undefined, direct: number | undefined) =>
  relay === undefined || direct === undefined || direct === 0 ? null : round(relay / direct, 2)

const added = (relay: number | undefined, direct: number | undefined) => (relay === undefined || direct === undefined ? null : round(relay - direct))

export function compare(direct: PathStats, relay: PathStats): PathRatios {
  return {
    ttftP50: ratio(relay.ttftMs?.p50, direct.ttftMs?.p50),
    ttftP95: ratio(relay.ttftMs?.p95, direct.ttftMs?.p95),
    streamTokensPerSecond: ratio(relay.streamTokensPerSecond?.p50, direct.streamTokensPerSecond?.p50),
    aggregateTokensPerSecond: ratio(relay.aggregateTokensPerSecond, direct.aggregateTokensPerSecond),
    requestsPerSecond: ratio(relay.requestsPerSecond, direct.requestsPerSecond),
    wall: ratio(relay.wallMs, direct.wallMs),
    addedTtftMsP50: added(relay.ttftMs?.p50, direct.ttftMs?.p50),
    addedLastTokenMsP50: added(relay.streamMs?.p50, direct.streamMs?.p50),
  }
}
