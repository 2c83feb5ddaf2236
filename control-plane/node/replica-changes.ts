import type { ReplicaReport } from '../../protocol/index.ts'

/** Fields whose change the registry records; busy slots change constantly and are not among them. */
function registryKey(report: ReplicaReport): string {
  return [report.state, report.slots, report.engine, report.engine_version ?? '', report.reason ?? ''].join('\u0000')
}

/** The reported replicas that differ from what was stored, as far as the registry cares. */
export function changedReplicas(stored: readonly ReplicaReport[], reported: readonly ReplicaReport[]): ReplicaReport[] {
  const before = new Map(stored.map((r) => [r.pool, registryKey(r)]))
  return reported.filter((r) => before.get(r.pool) !== registryKey(r))
}
