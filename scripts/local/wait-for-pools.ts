import { PoolView } from '../../protocol/index.ts'

/** Between two looks at the pools while `npm start` waits for them. */
const POLL_INTERVAL_MS = 200

export interface PoolWaitOptions {
  /** The eager pools of the local agent. */
  ids: readonly string[]
  /** `GET /v2/pools/{id}` with the admin token. */
  admin: (method: string, route: string) => Promise<Response>
  deadline: number
  /** True once the agent exited: nothing more will start. */
  stopped: () => boolean
  say: (line: string) => void
  /** The log to point at, as the operator would type it. */
  agentLog: string
}

/**
 * Waits for each pool to be ready, saying so pool by pool. A pool whose replica failed is
 * reported at once with the reason `llorch pools show` has, and not waited for; a pool still
 * starting at the deadline is named with the log to read.
 */
export async function waitForPools({ ids, admin, deadline, stopped, say, agentLog }: PoolWaitOptions): Promise<void> {
  const pending = new Set(ids)
  while (pending.size > 0 && Date.now() < deadline && !stopped()) {
    for (const id of [...pending]) {
      const response = await admin('GET', `/v2/pools/${encodeURIComponent(id)}`)
      if (response.status !== 200) continue
      const pool = PoolView.parse(await response.json())
      const failed = pool.replicas.find((r) => r.state === 'failed')
      if (pool.state === 'ready') say(`llorch: pool "${id}" is ready`)
      else if (failed)
        say(
          `llorch: pool "${id}" failed on node ${failed.node_id}: ${(failed.reason ?? 'no reason given').split('\n')[0]}\n  (npx llorch pools show ${id} and ${agentLog} have the rest; the agent retries as its restart policy says)`,
        )
      else continue
      pending.delete(id)
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
  for (const id of pending) say(`llorch: pool "${id}" is not ready yet; see ${agentLog}`)
}
