import type { DownloadProgress } from '../../protocol/index.ts'
import { formatBytes } from '../../protocol/index.ts'

const BAR_WIDTH = 24

function formatEta(ms: number | null): string {
  if (ms === null) return '?'
  const s = Math.ceil(ms / 1000)
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
}

/** `tiny.gguf [#########-----] 45% 1.2 MB/2.6 MB 3.4 MB/s eta 2s`, for a terminal. */
export function progressBar(progress: DownloadProgress): string {
  const total = progress.bytes_total
  const fraction = total === null || total === 0 ? 0 : Math.min(1, progress.bytes_done / total)
  const filled = Math.round(fraction * BAR_WIDTH)
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`
  const amount = total === null ? formatBytes(progress.bytes_done) : `${formatBytes(progress.bytes_done)}/${formatBytes(total)}`
  return `${progress.file} ${bar} ${Math.floor(fraction * 100)}% ${amount} ${formatBytes(progress.bytes_per_s)}/s eta ${formatEta(progress.eta_ms)}`
}
