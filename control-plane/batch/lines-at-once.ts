/** Lines of one batch that run at once: its share of the pool's ready slots, one at least (which starts an on-demand replica). */
export function linesAtOnce(readySlots: number, share: number): number {
  return Math.max(1, Math.floor(readySlots * share))
}
