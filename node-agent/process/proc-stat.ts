import { readFileSync } from 'node:fs'

/**
 * `/proc/PID/stat`, split: the command name, and the fields after it (`state` first, then
 * `ppid`, `pgrp`, …, as proc(5) numbers them from 3). Null when the process is gone, or off Linux.
 */
export function readProcStat(pid: number): { comm: string; fields: string[] } | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses, so split after the last ')'.
  const close = text.lastIndexOf(')')
  return { comm: text.slice(text.indexOf('(') + 1, close), fields: text.slice(close + 2).split(' ') }
}
