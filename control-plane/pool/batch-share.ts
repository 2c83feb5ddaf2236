/**
 * The slots batch-class tasks may hold at once in a pool: `share` of its ready slots less `held`
 * (kept free for interactive traffic), one at least (which starts an on-demand replica). The
 * PoolObject counts every batch's tasks against it; a BatchObject runs no more of its own lines at once.
 */
export function batchSlots(readySlots: number, share: number, held = 0): number {
  return Math.max(1, Math.floor(readySlots * share) - held)
}
