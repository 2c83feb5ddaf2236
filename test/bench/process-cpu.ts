import { readdirSync } from 'node:fs'
import { readProcStat } from '../../node-agent/process/proc-stat.ts'

/** `getconf CLK_TCK` on Linux: /proc counts CPU time in these. */
const CLOCK_TICKS_PER_SECOND = 100

interface ProcStat {
  pid: number
  comm: string
  ppid: number
  cpuMs: number
}

function readStat(pid: number): ProcStat | null {
  const stat = readProcStat(pid)
  if (!stat) return null
  const { comm, fields } = stat
  const ticks = Number(fields[11]) + Number(fields[12])
  return { pid, comm, ppid: Number(fields[1]), cpuMs: (ticks * 1_000) / CLOCK_TICKS_PER_SECOND }
}

/** CPU time (user + system) the processes have used so far, in ms; 0 for any gone (or off Linux). */
export function cpuMsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.cpuMs ?? 0), 0)
}

/** Processes below `root` whose command name is `comm` (e.g. the workerd Miniflare or `llorch serve` started). */
export function descendantsNamed(root: number, comm: string): number[] {
  let stats: ProcStat[]
  try {
    stats = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .flatMap((name) => readStat(Number(name)) ?? [])
  } catch {
    return []
  }
  const below = new Set([root])
  for (let size = 0; below.size !== size;) {
    size = below.size
    for (const stat of stats) if (below.has(stat.ppid)) below.add(stat.pid)
  }
  return stats.filter((stat) => stat.pid !== root && below.has(stat.pid) && stat.comm === comm).map((stat) => stat.pid)
}
