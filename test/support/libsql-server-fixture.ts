import { createClient, type Client, type Config } from '@libsql/client'
import { createClient as createWebClient } from '@libsql/client/web'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PipelineResponseBody } from '../../db/libsql-server/hrana-schema.ts'
import { startLibsqlServer, type LibsqlServer, type LibsqlServerOptions } from '../../db/libsql-server/index.ts'

export type ClientKind = 'node' | 'web'

export interface TestLibsqlServer extends LibsqlServer {
  readonly file: string
  /** A client on this server (`@libsql/client` or `@libsql/client/web`), closed with the server. */
  client(kind?: ClientKind, config?: Omit<Config, 'url'>): Client
  /** POSTs a raw Hrana pipeline body to `/v2/pipeline` (or another path). */
  post(body: unknown, init?: PostInit): Promise<Response>
  /** POSTs a pipeline that must succeed (HTTP 200) and returns its body, checked against the protocol schema. */
  pipeline(body: unknown, init?: PostInit): Promise<PipelineResponseBody>
}

interface PostInit {
  path?: string
  headers?: Record<string, string>
}

/** A server on port 0 over a database file in its own temporary folder; close() removes both. */
export async function startTestLibsqlServer(options: Omit<LibsqlServerOptions, 'file'> = {}): Promise<TestLibsqlServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'llorch-libsql-'))
  const file = path.join(dir, 'test.db')
  let server: LibsqlServer
  try {
    server = await startLibsqlServer({ ...options, file })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const clients: Client[] = []
  const post = (body: unknown, init: PostInit = {}) =>
    fetch(new URL(init.path ?? '/v2/pipeline', server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  return {
    url: server.url,
    port: server.port,
    file,
    openStreamCount: () => server.openStreamCount(),
    client(kind = 'node', config = {}) {
      const client = (kind === 'node' ? createClient : createWebClient)({ ...config, url: server.url })
      clients.push(client)
      return client
    },
    post,
    async pipeline(body, init) {
      const response = await post(body, init)
      const json: unknown = await response.json()
      if (response.status !== 200) throw new Error(`expected HTTP 200 from the pipeline, got ${response.status}: ${JSON.stringify(json)}`)
      return PipelineResponseBody.parse(json)
    },
    async close() {
      for (const client of clients) client.close()
      try {
        await server.close()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
