import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startLibsqlServer } from '../../../db/libsql-server/index.ts'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const TOKEN = 'test-token-6f1b0c2e9a'

describe('libsql server Bearer auth', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('serves a client that sends the configured token', async () => {
    server = await startTestLibsqlServer({ authToken: TOKEN })
    const result = await server.client('node', { authToken: TOKEN }).execute('SELECT 1 AS one')
    expect(result.rows[0]?.one).toBe(1)
  })

  it('refuses a client without a token or with a wrong one', async () => {
    server = await startTestLibsqlServer({ authToken: TOKEN })
    for (const authToken of [undefined, `${TOKEN}x`, TOKEN.slice(1)]) {
      const client = server.client('web', authToken === undefined ? {} : { authToken })
      await expect(client.execute('SELECT 1')).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringContaining('Authentication failed') })
    }
    const raw = await server.post({ requests: [] }, { headers: { authorization: `Basic ${TOKEN}` } })
    expect(raw.status).toBe(401)
    expect(server.openStreamCount()).toBe(0)
  })

  it('accepts any client when no token is configured', async () => {
    server = await startTestLibsqlServer()
    const result = await server.client('node', { authToken: 'ignored' }).execute('SELECT 1 AS one')
    expect(result.rows[0]?.one).toBe(1)
  })

  it('refuses to bind anything but loopback without a token, and binds it with one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llorch-libsql-auth-'))
    try {
      const file = path.join(dir, 'registry.db')
      await expect(startLibsqlServer({ file, host: '0.0.0.0' })).rejects.toThrow(
        'libsql-server: binding 0.0.0.0 needs an auth token; without one it binds only loopback (127.0.0.1, ::1)',
      )
      const open = await startLibsqlServer({ file, host: '0.0.0.0', authToken: TOKEN })
      const refused = await fetch(`${open.url}/v2/pipeline`, {
        method: 'POST',
        body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }] }),
      })
      expect(refused.status).toBe(401)
      await open.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
