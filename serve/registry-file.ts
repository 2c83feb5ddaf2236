import { createClient, type Client } from '@libsql/client'
import { pathToFileURL } from 'node:url'

/**
 * The registry file opened directly with the embedded engine, beside a running libSQL server:
 * SQLite's own locking and the WAL make the reads consistent while the server writes.
 * Integers come back as bigint so a dump keeps them exact and apart from reals.
 */
export function openRegistryFile(file: string): Client {
  return createClient({ url: pathToFileURL(file).href, intMode: 'bigint' })
}
