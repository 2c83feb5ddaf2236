import { afterEach, describe, expect, it } from 'vitest'
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
})
