import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import type { AgentConfig } from '../config/schema.ts'
import type { Finding } from './finding.ts'
import { SERVICE_USER } from './token-file.ts'

/** The state dir is a writable directory, or can be created in the nearest folder that exists. */
export function checkStateDir(config: AgentConfig): Finding {
  const dir = config.state_dir
  const base = { check: 'state dir', field: 'state_dir' }
  const fix = `sudo install -d -o ${SERVICE_USER} -g ${SERVICE_USER} ${dir}, or set state_dir to a folder this user can write`
  let existing = dir
  for (;;) {
    try {
      if (!statSync(existing).isDirectory()) return { ...base, verdict: 'fail', message: `${existing} is not a directory`, fix }
      break
    } catch {
      const parent = path.dirname(existing)
      if (parent === existing) break
      existing = parent
    }
  }
  try {
    accessSync(existing, constants.W_OK)
  } catch {
    return {
      ...base,
      verdict: 'fail',
      message: existing === dir ? `${dir} is not writable by this user` : `${dir} does not exist and ${existing} is not writable by this user`,
      fix,
    }
  }
  return { ...base, verdict: 'ok', message: existing === dir ? `${dir} (writable)` : `${dir} (created at start)` }
}
