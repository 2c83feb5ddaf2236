const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const

/** `4.1 GB`: decimal units, as disks are sold and `df -H` prints. */
export function formatBytes(bytes: number): string {
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000
    unit += 1
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`
}

/** `tiny.gguf 45% 0.7 MB / 1.5 MB at 250.0 kB/s, 3 s left`: a download in one line. */
export function describeDownload(d: { file: string; bytes_done: number; bytes_total: number | null; bytes_per_s: number; eta_ms: number | null }): string {
  const total = d.bytes_total
  const percent = total ? `${Math.floor((d.bytes_done / total) * 100)}% ` : ''
  const eta = d.eta_ms === null ? '' : `, ${Math.ceil(d.eta_ms / 1000)} s left`
  return `${d.file} ${percent}${formatBytes(d.bytes_done)}${total ? ` / ${formatBytes(total)}` : ''} at ${formatBytes(d.bytes_per_s)}/s${eta}`
}
