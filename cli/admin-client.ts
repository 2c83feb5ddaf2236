import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { z } from 'zod'
import { NativeErrorBody, describeIssues } from '../protocol/index.ts'
import { LOCAL_STATE_FILE, LocalState } from '../scripts/local/local-state.ts'

/** Exit codes: 1 when the control plane refused or failed, 2 when the command line or setup is wrong. */
export const EXIT_API_ERROR = 1
export const EXIT_USAGE = 2

/** A failure the CLI prints as one line (or a few) and exits with. */
export class CliError extends Error {
  override readonly name = 'CliError'
  readonly exitCode: number

  constructor(message: string, exitCode = EXIT_API_ERROR) {
    super(message)
    this.exitCode = exitCode
  }
}

export interface Connection {
  url: string
  adminToken: string
  /** Where each came from, for error messages. */
  source: string
}

/** `.llorch/local.json` as `npm start` writes it, when there is one. */
function localState(): LocalState | null {
  if (!existsSync(LOCAL_STATE_FILE)) return null
  const parsed = LocalState.safeParse(JSON.parse(readFileSync(LOCAL_STATE_FILE, 'utf8')))
  if (!parsed.success) throw new CliError(`${LOCAL_STATE_FILE}: ${describeIssues(parsed.error.issues)}; run npm start again to rewrite it`, EXIT_USAGE)
  return parsed.data
}

/** The control plane and admin token from the flags, else `LLORCH_URL`/`LLORCH_ADMIN_TOKEN`, else `.llorch/local.json`. */
export function resolveConnection(flags: { url?: string | undefined; adminToken?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Connection {
  const local = (flags.url ?? env.LLORCH_URL) && (flags.adminToken ?? env.LLORCH_ADMIN_TOKEN) ? null : localState()
  const shownFile = path.relative(process.cwd(), LOCAL_STATE_FILE) || LOCAL_STATE_FILE
  const url = flags.url ?? env.LLORCH_URL ?? local?.url
  const adminToken = flags.adminToken ?? env.LLORCH_ADMIN_TOKEN ?? local?.adminToken
  if (!url) throw new CliError(`no control plane URL: pass --url, set LLORCH_URL, or run npm start (it writes ${shownFile})`, EXIT_USAGE)
  if (!adminToken)
    throw new CliError('no admin token: pass --admin-token, set LLORCH_ADMIN_TOKEN (the ADMIN_TOKEN secret, or an API key with the admin scope)', EXIT_USAGE)
  const source = flags.url ? '--url' : env.LLORCH_URL ? 'LLORCH_URL' : shownFile
  return { url: url.replace(/\/$/, ''), adminToken, source }
}

function hintFor(status: number, connection: Connection): string {
  if (status === 401) return `the admin token was refused; check --admin-token or LLORCH_ADMIN_TOKEN (URL from ${connection.source})`
  if (status === 403) return 'this key lacks the admin scope; use the admin token or a key created with --scope admin'
  return ''
}

/** Calls the admin API with the admin token and checks the answer against `schema`. */
export async function request<S extends z.ZodType>(
  connection: Connection,
  { method, path: route, body, schema, accept = [200, 201, 202] }: { method: string; path: string; body?: unknown; schema: S; accept?: readonly number[] },
): Promise<{ status: number; data: z.infer<S> }> {
  let response: Response
  try {
    response = await fetch(`${connection.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${connection.adminToken}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error)
    throw new CliError(`cannot reach ${connection.url} (${cause}); is the control plane running? npm start runs one locally (URL from ${connection.source})`)
  }
  const text = await response.text()
  let json: unknown = null
  try {
    json = text === '' ? null : JSON.parse(text)
  } catch {
    throw new CliError(`${method} ${route} answered ${response.status} with something that is not JSON: ${text.slice(0, 200)}`)
  }
  if (!accept.includes(response.status)) {
    const error = NativeErrorBody.safeParse(json)
    const detail = error.success ? `${error.data.error.code}: ${error.data.error.message}` : text.slice(0, 200)
    const hint = hintFor(response.status, connection)
    throw new CliError(`${method} ${route} answered ${response.status} (${detail})${hint ? `\n${hint}` : ''}`)
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success)
    throw new CliError(
      `${method} ${route}: unexpected answer (${describeIssues(parsed.error.issues)}); is ${connection.url} a llorch control plane of this version?`,
    )
  return { status: response.status, data: parsed.data }
}
