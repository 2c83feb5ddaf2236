import type { PoolCeilingRequest } from '../../protocol/index.ts'
import type { BenchOptions } from './bench-options.ts'

/** A pool the bench's agent serves with one fake engine, which the direct path calls too. */
export interface BenchPool {
  id: string
  /** The fake engine's `--tokens-per-second`; 0 streams as fast as it can. */
  tokensPerSecond: number
  slots: number
  /** The engine answers with one tool call of these arguments, streamed in 4-character fragments. */
  toolArguments?: string
  /** Replicas on as many nodes (one agent each); 1 when absent. */
  replicas?: number
}

/** About 1 KiB of JSON arguments: 256 fragments of 4 characters, like a model writing a tool call. */
export const BENCH_TOOL_ARGUMENTS = JSON.stringify({
  query: 'weather in '.repeat(40).trim(),
  days: 3,
  units: 'metric',
  include: ['hourly', 'alerts'],
  note: 'x'.repeat(480),
})

export interface Scenario {
  name: string
  description: string
  pool: BenchPool
  requests: number
  concurrency: number
  /** `max_tokens` of every request; the engine itself could stream far more. */
  tokens: number
}

/** Sessions (by `user`) talking to a pool of several replicas, each session one request at a time. */
export interface AffinityPlan {
  pool: BenchPool
  sessions: number
  /** Requests per session, one after the other. */
  turns: number
  concurrency: number
  tokens: number
}

export interface BenchPlan {
  pools: BenchPool[]
  scenarios: Scenario[]
  affinity: AffinityPlan
  poolCeiling: PoolCeilingRequest
}

/** Requests in flight at once in the one-token scenario. */
export const ONE_TOKEN_CONCURRENCY = 16
/** The shapes issue 21 sets targets for: 16 concurrent 64-token streams, 8 concurrent 2048-token ones. */
export const BURST_CONCURRENCY = 16
export const LONG_CONCURRENCY = 8

/**
 * (1) one stream at a time at maximum engine speed: the relay's cost per request and per token;
 * (2) `concurrency` streams at once at maximum engine speed: aggregate throughput;
 * (3) one-token requests, 16 at once: the cost per request alone, as requests/s;
 * (3b) 16 streams of 64 tokens and 8 of 2048 at once: short and long replies at full speed;
 * (4) `concurrency` streams from an engine paced at `pacedRate` tokens/s, a second of output
 *     each: the TTFT the relay adds when the engine is the bottleneck;
 * and, relay only, sessions over a pool of two replicas: how often a session's request lands on
 * the replica that served most of that session (the affinity hit rate).
 */
export function planBench({ requests, concurrency, tokens, pacedRate, quick }: BenchOptions): BenchPlan {
  const fast: BenchPool = { id: 'bench-max-speed', tokensPerSecond: 0, slots: Math.max(concurrency, ONE_TOKEN_CONCURRENCY) }
  const paced: BenchPool = { id: 'bench-paced', tokensPerSecond: pacedRate, slots: concurrency }
  const tools: BenchPool = { id: 'bench-tool-call', tokensPerSecond: 0, slots: concurrency, toolArguments: BENCH_TOOL_ARGUMENTS }
  /** `streams` at once of `length` tokens each, at full engine speed, `rounds` times over. */
  const streamsAtOnce = (name: string, streams: number, length: number, rounds: number): Scenario => ({
    name,
    description: `${streams} streams at once, ${length} tokens, engine at max speed`,
    pool: fast,
    requests: rounds * streams,
    concurrency: streams,
    tokens: length,
  })
  const scenarios: Scenario[] = [
    { name: 'sequential', description: `1 stream at a time, ${tokens} tokens, engine at max speed`, pool: fast, requests, concurrency: 1, tokens },
    { name: 'concurrent', description: `${concurrency} streams at once, ${tokens} tokens, engine at max speed`, pool: fast, requests, concurrency, tokens },
    {
      name: 'one-token',
      description: `${ONE_TOKEN_CONCURRENCY} requests at once, 1 token each, engine at max speed`,
      pool: fast,
      requests: 2 * Math.max(requests, ONE_TOKEN_CONCURRENCY * 4),
      concurrency: ONE_TOKEN_CONCURRENCY,
      tokens: 1,
    },
    streamsAtOnce('burst-64', BURST_CONCURRENCY, 64, quick ? 4 : 16),
    streamsAtOnce('long', LONG_CONCURRENCY, 2048, quick ? 2 : 8),
    {
      name: 'tool-call',
      description: `${concurrency} streams at once, one tool call of ${BENCH_TOOL_ARGUMENTS.length} argument characters in 4-character fragments`,
      pool: tools,
      requests,
      concurrency,
      tokens: Math.ceil(BENCH_TOOL_ARGUMENTS.length / 4),
    },
  ]
  if (pacedRate > 0) {
    scenarios.push({
      name: 'paced',
      description: `${concurrency} streams at once, ${pacedRate} tokens, engine at ${pacedRate} tokens/s`,
      pool: paced,
      requests: (quick ? 2 : 4) * concurrency,
      concurrency,
      tokens: pacedRate,
    })
  }
  // Two replicas of two slots, as many sessions in flight as slots: a session whose replica is full goes elsewhere.
  const shared: BenchPool = { id: 'bench-affinity', tokensPerSecond: 0, slots: 2, replicas: 2 }
  const affinity: AffinityPlan = { pool: shared, sessions: 16, turns: quick ? 4 : 12, concurrency: 4, tokens: 16 }
  // Many replicas with slots to spare, so that only the pool's own bookkeeping limits the rate.
  const poolCeiling: PoolCeilingRequest = { tasks: quick ? 2_000 : 10_000, concurrency: 64, nodes: 64, slots: 16 }
  return { pools: pacedRate > 0 ? [fast, tools, paced, shared] : [fast, tools, shared], scenarios, affinity, poolCeiling }
}
