import { createClient } from '@libsql/client/web'
import { drizzle } from 'drizzle-orm/libsql/web'
import * as schema from './schema.ts'

export interface RegistryOptions {
  /** `http://` or `https://` URL of sqld, Turso or the local libSQL server (`libsql://` is read as https). */
  url: string
  authToken?: string | undefined
  /** The fetch the HTTP client calls with one `Request` (the Worker bounds it with a timeout). */
  fetch?: (request: Request) => Promise<Response>
}

/**
 * A drizzle handle on the registry over libSQL's HTTP protocol. The Worker and Node scripts use
 * this same code path; only the URL and token differ between development and production.
 */
export function createRegistry({ url, authToken, fetch }: RegistryOptions) {
  const client = createClient({ url, ...(authToken ? { authToken } : {}), ...(fetch ? { fetch } : {}) })
  return drizzle(client, { schema })
}

export type Registry = ReturnType<typeof createRegistry>
