import type { NodeMetrics, NodeStatus, NodeView } from '../../protocol/index.ts'
import type { NodeRow } from '../../db/schema.ts'
import type { Bindings } from '../runtime/env.ts'
import { logError } from '../runtime/log.ts'

/** What every view of a node shows as its presence: the same in `GET /v2/nodes`, the CLI and the dashboard. */
export interface Presence {
  status: NodeStatus
  lastSeenAt: Date | null
}

/**
 * A node's presence. The NodeObject is the source of truth: it holds the agent's socket and its
 * last hello or heartbeat; the registry only knows a node was revoked, and keeps `last_seen_at`
 * written on hello and once a minute, the answer when the object does not.
 */
export function presenceOf(row: NodeRow, live: NodeMetrics | null, now: Date): Presence {
  if (row.status === 'revoked' || live === null) return { status: row.status, lastSeenAt: row.lastSeenAt }
  const heard = live.heartbeat_age_seconds === null ? row.lastSeenAt : new Date(now.getTime() - live.heartbeat_age_seconds * 1000)
  if (live.online) return { status: 'online', lastSeenAt: heard }
  return { status: heard === null ? 'new' : 'offline', lastSeenAt: heard }
}

/** Asks each unrevoked node's object for its presence at once; one that fails falls back to the registry. */
export async function livePresence(env: Bindings, rows: readonly NodeRow[], now: Date): Promise<Map<string, Presence>> {
  const answers = await Promise.allSettled(rows.map((row) => (row.status === 'revoked' ? Promise.resolve(null) : env.NODES.getByName(row.id).metrics())))
  return new Map(
    rows.map((row, i) => {
      const answer = answers[i]
      if (answer?.status === 'rejected') logError('node.presence_unreachable', { node: row.id, error: String(answer.reason) })
      return [row.id, presenceOf(row, answer?.status === 'fulfilled' ? answer.value : null, now)]
    }),
  )
}

/** `view` with the node's presence in place of the registry's. */
export function withPresence(view: NodeView, presence: Presence | undefined): NodeView {
  if (!presence) return view
  return { ...view, status: presence.status, last_seen_at: presence.lastSeenAt?.toISOString() ?? null }
}
