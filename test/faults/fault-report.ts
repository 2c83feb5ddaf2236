import type { ClientOutcome } from './fault-clients.ts'

/** One fault, as the suite's table shows it. */
export interface FaultRow {
  fault: string
  clients: number
  served: number
  /** Error codes the clients got, with counts. */
  errors: Record<string, number>
  /** Clients failed before any token while another replica (or a restarting one) could serve them. */
  lost: number
  /** Clients whose text was not a prefix of what the engine streams: tokens duplicated or out of order. */
  badTokens: number
  slowestAnswerMs: number
  /** The pool's busy slots two heartbeats after the last client finished. */
  busyAfter: number
  /** A request sent after the fault: how long it took, or why it failed. */
  nextRequest: string
}

export function summarizeClients(outcomes: readonly ClientOutcome[], expected: string, { anotherReplicaCouldServe }: { anotherReplicaCouldServe: boolean }) {
  const errors: Record<string, number> = {}
  for (const o of outcomes) if (!o.ok && o.errorCode) errors[o.errorCode] = (errors[o.errorCode] ?? 0) + 1
  return {
    clients: outcomes.length,
    served: outcomes.filter((o) => o.ok).length,
    errors,
    lost: anotherReplicaCouldServe ? outcomes.filter((o) => !o.ok && !o.sawTokens && o.errorCode !== 'aborted').length : 0,
    badTokens: outcomes.filter((o) => !expected.startsWith(o.text) || (o.ok && o.text !== expected)).length,
    slowestAnswerMs: Math.max(0, ...outcomes.map((o) => o.ms)),
  }
}

const HEADER = ['FAULT', 'CLIENTS', 'SERVED', 'ERRORS', 'LOST', 'BAD TOKENS', 'SLOWEST ms', 'BUSY AFTER', 'NEXT REQUEST']

export function renderFaultTable(rows: readonly FaultRow[]): string {
  const cells = rows.map((r) => [
    r.fault,
    String(r.clients),
    String(r.served),
    Object.entries(r.errors)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ') || '-',
    String(r.lost),
    String(r.badTokens),
    String(r.slowestAnswerMs),
    String(r.busyAfter),
    r.nextRequest,
  ])
  const all = [HEADER, ...cells]
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)))
  return all
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}
