import type { ReplicaReport } from '../../protocol/index.ts'

/**
 * Fields whose change the registry records; busy slots change constantly and are not among them.
 * Download progress is: it changes on each heartbeat only while files are fetched.
 */
function registryKey(report: ReplicaReport): string {
  return [report.state, report.slots, report.engine, report.engine_version ?? '', report.reason ?? '', JSON.stringify(report.download ?? null)].join('\u0000')
}

/**
 * The replica as its pool plans with it: a downloading replica comes up without another command,
 * as a starting one does, so the pool counts it as starting.
 */
export function asPoolSeesIt(report: ReplicaReport): ReplicaReport {
  return report.state === 'downloading' ? { ...report, state: 'starting' } : report
}

/** The reported replicas that differ from what was stored, as far as the registry cares. */
export function changedReplicas(stored: readonly ReplicaReport[], reported: readonly ReplicaReport[]): ReplicaReport[] {
  const before = new Map(stored.map((r) => [r.pool, registryKey(r)]))
  return reported.filter((r) => before.get(r.pool) !== registryKey(r))
}
