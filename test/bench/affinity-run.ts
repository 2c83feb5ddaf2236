import { z } from 'zod'
import type { BenchStack } from './bench-stack.ts'
import type { AffinityPlan } from './scenarios.ts'
import { streamOnce } from './stream-request.ts'
import type { StreamSample } from './stream-request.ts'
import { summarize } from './stream-stats.ts'
import type { PathStats } from './stream-stats.ts'

export interface AffinityResult {
  pool: string
  replicas: number
  sessions: number
  turns: number
  concurrency: number
  tokens: number
  relay: PathStats
  /** Of the requests after a session's first, those served by the replica that served the session's previous request. */
  hitRate: number
  /** The same for placement that ignores sessions, on average: one replica in `replicas`. */
  chanceRate: number
}

const EngineUsers = z.object({ users: z.record(z.string(), z.number()) })

async function usersSeen(engineUrl: string): Promise<Record<string, number>> {
  const response = await fetch(`${engineUrl}/fake/stats`)
  return EngineUsers.parse(await response.json()).users
}

/**
 * Sessions (`X-Session-Id: bench-session-N`) through the relay, each one request at a time,
 * `concurrency` sessions in flight. Each request carries a `user` of its own (`N/turn`), so the
 * engines can say which of them served which turn.
 */
export async function runAffinity(stack: BenchStack, plan: AffinityPlan): Promise<AffinityResult> {
  const engines = stack.replicaEngineUrls.get(plan.pool.id) ?? []
  const target = { path: 'relay' as const, url: `${stack.apiUrl}/chat/completions`, model: plan.pool.id, headers: { Authorization: `Bearer ${stack.apiKey}` } }
  const samples: StreamSample[] = []
  let next = 0
  const lane = async () => {
    while (next < plan.sessions) {
      const session = next++
      const headers = { ...target.headers, 'X-Session-Id': `bench-session-${session}` }
      for (let turn = 0; turn < plan.turns; turn++) samples.push(await streamOnce({ ...target, headers }, plan.tokens, { user: `${session}/${turn}` }))
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.sessions) }, lane))
  const wallMs = performance.now() - started
  const seen = await Promise.all(engines.map(usersSeen))
  const servedBy = (tag: string) => seen.findIndex((users) => (users[tag] ?? 0) > 0)

  let hits = 0
  let total = 0
  for (let s = 0; s < plan.sessions; s++) {
    for (let turn = 1; turn < plan.turns; turn++) {
      const engine = servedBy(`${s}/${turn}`)
      if (engine < 0) continue
      total += 1
      if (engine === servedBy(`${s}/${turn - 1}`)) hits += 1
    }
  }
  return {
    pool: plan.pool.id,
    replicas: engines.length,
    sessions: plan.sessions,
    turns: plan.turns,
    concurrency: plan.concurrency,
    tokens: plan.tokens,
    relay: summarize({ samples, wallMs }),
    hitRate: total === 0 ? 0 : Number((hits / total).toFixed(4)),
    chanceRate: engines.length === 0 ? 0 : Number((1 / engines.length).toFixed(4)),
  }
}
