import Table from 'cli-table3'
import { describeDownload } from '../protocol/index.ts'
import type { NodeView, ReplicaView } from '../protocol/index.ts'

/** A plain table: a header row, no borders, two spaces between columns; what `kubectl get` prints. */
export function table(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const blank = {
    top: '',
    'top-mid': '',
    'top-left': '',
    'top-right': '',
    bottom: '',
    'bottom-mid': '',
    'bottom-left': '',
    'bottom-right': '',
    left: '',
    'left-mid': '',
    mid: '',
    'mid-mid': '',
    right: '',
    'right-mid': '',
    middle: '  ',
  }
  const out = new Table({ head: [...head], chars: blank, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } })
  for (const row of rows) out.push(row.map(String))
  return out
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  return `${Math.floor(s / 3600)}h ago`
}

export function gpusOf(node: NodeView): string {
  if (node.gpus.length === 0) return '-'
  return node.gpus.map((g) => `${g.index}:${g.name} ${(g.memory_used_mib / 1024).toFixed(1)}/${(g.memory_total_mib / 1024).toFixed(1)}G`).join(', ')
}

export function replicaRows(replicas: readonly ReplicaView[]): string[][] {
  // A download in progress says more than the reason of the state it is in.
  return replicas.map((r) => [
    r.pool,
    r.node_id,
    r.state,
    `${r.slots_busy ?? '?'}/${r.slots}`,
    r.engine + (r.engine_version ? ` ${r.engine_version}` : ''),
    r.download ? describeDownload(r.download) : ((r.reason ?? '').split('\n')[0] ?? ''),
  ])
}

export const REPLICA_HEAD = ['POOL', 'NODE', 'STATE', 'SLOTS', 'ENGINE', 'REASON'] as const
