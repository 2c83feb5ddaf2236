import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { PROJECT_ROOT } from './project-root.ts'

/** Where `npm start` keeps everything; `LLORCH_STATE_DIR` moves it (tests run a second stack). */
export const STATE_DIR = path.resolve(PROJECT_ROOT, process.env.LLORCH_STATE_DIR || '.llorch')
export const LOCAL_STATE_FILE = path.join(STATE_DIR, 'local.json')

/** `.llorch/local.json`: where the running local stack is, for scripts, tests and people. */
export const LocalState = z.object({
  url: z.url(),
  libsqlUrl: z.url(),
  adminToken: z.string().min(16),
  nodeId: z.string().optional(),
  apiKey: z.string().optional(),
})
export type LocalState = z.infer<typeof LocalState>

/** Secrets that must survive restarts (the node token and API key are shown only once). */
export const LocalSecrets = z.object({
  adminToken: z.string().min(16),
  /** The credential the local libSQL server requires; the Worker holds it as LIBSQL_AUTH_TOKEN. */
  libsqlAuthToken: z.string().min(16).optional(),
  nodeId: z.string().optional(),
  nodeToken: z.string().optional(),
  apiKey: z.string().optional(),
})
export type LocalSecrets = z.infer<typeof LocalSecrets>

const SECRETS_FILE = path.join(STATE_DIR, 'secrets.json')

export function readLocalSecrets(): LocalSecrets | null {
  try {
    return LocalSecrets.parse(JSON.parse(readFileSync(SECRETS_FILE, 'utf8')))
  } catch {
    return null
  }
}

export function writeLocalSecrets(secrets: LocalSecrets): void {
  mkdirSync(STATE_DIR, { recursive: true })
  writeFileSync(SECRETS_FILE, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 })
}

export function writeLocalState(state: LocalState): void {
  mkdirSync(STATE_DIR, { recursive: true })
  writeFileSync(LOCAL_STATE_FILE, `${JSON.stringify(LocalState.parse(state), null, 2)}\n`, { mode: 0o600 })
}
