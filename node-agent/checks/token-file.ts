import { readFileSync, statSync } from 'node:fs'
import { execa } from 'execa'
import type { AgentConfig } from '../config/schema.ts'
import type { Finding } from './finding.ts'

/** The system user the systemd unit runs the agent as (install.sh creates it). */
export const SERVICE_USER = 'llorch'
/** Shorter than any token the control plane issues. */
const MIN_TOKEN_LENGTH = 16

/** The service user's uid, or null when this system has no such user. */
export async function serviceUserUid(): Promise<number | null> {
  const result = await execa('id', ['-u', SERVICE_USER], { reject: false, stdin: 'ignore' })
  const uid = Number(result.stdout.trim())
  return result.exitCode === 0 && Number.isInteger(uid) ? uid : null
}

const errorCode = (error: unknown) => (error instanceof Error && 'code' in error ? String(error.code) : String(error))
const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`

function writeTokenFix(file: string): string {
  return `write the token that POST /v2/nodes printed into it: echo 'lln.…' | sudo tee ${file} >/dev/null && sudo chmod 600 ${file} && sudo chown ${SERVICE_USER} ${file}`
}

/**
 * The node token: given inline, or a file that exists, holds a token, is readable by this user,
 * is not readable by group or others, and (when this runs as root) belongs to the service user.
 */
export function checkNodeToken(config: AgentConfig, { serviceUid }: { serviceUid: number | null }): Finding[] {
  const check = 'token file'
  if (!config.control_plane_url) return [{ verdict: 'skip', check, message: 'no control_plane_url: the agent runs standalone and needs no token' }]
  if (config.node_token) return [{ verdict: 'ok', check, field: 'node_token', message: 'given inline in the config' }]
  const file = config.node_token_file
  if (!file) return []
  const field = 'node_token_file'
  let mode: number
  let owner: number
  let text: string
  try {
    ;({ mode, uid: owner } = statSync(file))
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = errorCode(error)
    if (code === 'ENOENT') return [{ verdict: 'fail', check, field, message: `${file} does not exist`, fix: writeTokenFix(file) }]
    if (code === 'EACCES') {
      return [
        {
          verdict: 'fail',
          check,
          field,
          message: `${file} cannot be read by this user (EACCES)`,
          fix: `run this as the service user (sudo -u ${SERVICE_USER} …) or: sudo chown ${SERVICE_USER} ${file}`,
        },
      ]
    }
    return [{ verdict: 'fail', check, field, message: `cannot read ${file} (${code})`, fix: writeTokenFix(file) }]
  }
  const findings: Finding[] = []
  if ((text.split('\n')[0]?.trim() ?? '').length < MIN_TOKEN_LENGTH) {
    findings.push({ verdict: 'fail', check, field, message: `${file} holds no node token`, fix: writeTokenFix(file) })
  }
  if ((mode & 0o077) !== 0) {
    findings.push({ verdict: 'fail', check, field, message: `${file} is readable by group or others (mode ${octal(mode)})`, fix: `sudo chmod 600 ${file}` })
  }
  const runsAsRoot = process.getuid?.() === 0
  if (runsAsRoot && serviceUid !== null && owner !== serviceUid && (mode & 0o004) === 0) {
    findings.push({
      verdict: 'fail',
      check,
      field,
      message: `${file} belongs to uid ${owner}; the service runs as ${SERVICE_USER} (uid ${serviceUid}) and cannot read it`,
      fix: `sudo chown ${SERVICE_USER} ${file}`,
    })
  }
  if (findings.length === 0) findings.push({ verdict: 'ok', check, field, message: `${file}: holds a token, mode ${octal(mode)}, owner uid ${owner}` })
  return findings
}
