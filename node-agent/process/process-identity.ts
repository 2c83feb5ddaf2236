import { readFileSync, readdirSync } from 'node:fs'
import { readProcStat } from './proc-stat.ts'

/**
 * What tells one process from a later one that reuses its pid: the start time in clock ticks
 * since boot (`/proc/PID/stat` field 22) and the boot id. Linux only; elsewhere nothing is read
 * and callers treat recorded processes as gone.
 */
export interface ProcessIdentity {
  pid: number
  start_time: string
  boot_id: string
}

interface ProcStat {
  state: string
  pgrp: number
  startTime: string
}

function readStat(pid: number): ProcStat | null {
  const fields = readProcStat(pid)?.fields
  if (!fields) return null
  const [state, , pgrp] = fields
  const startTime = fields[19]
  if (state === undefined || pgrp === undefined || startTime === undefined) return null
  return { state, pgrp: Number(pgrp), startTime }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

/** The identity of a live process, or null when it is gone (a zombie counts as gone). */
export function readProcessIdentity(pid: number): ProcessIdentity | null {
  const stat = readStat(pid)
  if (stat === null || stat.state === 'Z' || stat.state === 'X') return null
  return { pid, start_time: stat.startTime, boot_id: bootId() }
}

/** True when the process recorded in `identity` is still the one running under its pid. */
export function isSameProcess(identity: ProcessIdentity): boolean {
  const now = readProcessIdentity(identity.pid)
  return now !== null && now.start_time === identity.start_time && now.boot_id === identity.boot_id
}

/** True while `pid` runs (not a zombie). Falls back to signal 0 where there is no /proc. */
export function isProcessRunning(pid: number): boolean {
  const stat = readStat(pid)
  if (stat !== null) return stat.state !== 'Z' && stat.state !== 'X'
  try {
    process.kill(pid, 0)
    return process.platform !== 'linux'
  } catch {
    return false
  }
}

/** Live (non-zombie) members of process group `pgid`. */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    try {
      process.kill(-pgid, 0)
      return [pgid]
    } catch {
      return []
    }
  }
  const members: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(Number(entry))
    if (stat !== null && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(Number(entry))
  }
  return members
}
