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
