/**
 * The slots batch-class tasks may hold at once in a pool: `share` of its ready slots, one at
 * least (which starts an on-demand replica). The PoolObject counts every batch's tasks against it;
 * a BatchObject runs no more of its own lines at once.
 */
export function batchSlots(readySlots: number, share: number): number {
  return Math.max(1, Math.floor(readySlots * share))
}
