import { afterEach, describe, expect, it } from 'vitest'
import { MAX_OPEN_STREAMS } from '../../../db/libsql-server/index.ts'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const SELECT_ONE = { type: 'execute', stmt: { sql: 'SELECT 1' } }

describe('libsql server batons', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('issues a new baton on every reply and none once the stream closes', async () => {
    server = await startTestLibsqlServer()
    const first = await server.pipeline({ requests: [SELECT_ONE] })
    const second = await server.pipeline({ baton: first.baton, requests: [SELECT_ONE] })
    expect(first.baton).toEqual(expect.any(String))
    expect(second.baton).toEqual(expect.any(String))
    expect(second.baton).not.toBe(first.baton)
    const last = await server.pipeline({ baton: second.baton, requests: [{ type: 'close' }] })
    expect(last.baton).toBeNull()
    expect(server.openStreamCount()).toBe(0)
  })

  it('refuses a forged baton and a baton that was already used', async () => {
    server = await startTestLibsqlServer()
    const first = await server.pipeline({ requests: [SELECT_ONE] })
    await server.pipeline({ baton: first.baton, requests: [SELECT_ONE] })

    for (const baton of [first.baton, 'A'.repeat(43), `${first.baton?.slice(0, -1)}x`]) {
      const response = await server.post({ baton, requests: [SELECT_ONE] })
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ code: 'BATON_INVALID' })
    }
  })

  it('keeps the SQL texts stored on a stream across requests and forgets them when closed', async () => {
    server = await startTestLibsqlServer()
    const stored = await server.pipeline({ requests: [{ type: 'store_sql', sql_id: 7, sql: 'SELECT ? + 1' }] })
    const used = await server.pipeline({
      baton: stored.baton,
      requests: [
        { type: 'execute', stmt: { sql_id: 7, args: [{ type: 'integer', value: '41' }] } },
        { type: 'close_sql', sql_id: 7 },
        { type: 'execute', stmt: { sql_id: 7 } },
      ],
    })
    expect(used.results[0]).toMatchObject({ response: { result: { rows: [[{ type: 'integer', value: '42' }]] } } })
    expect(used.results[2]).toMatchObject({ type: 'error', error: { code: 'SQL_NOT_FOUND' } })
  })

  it('expires an idle stream, rolls back its transaction and reports STREAM_EXPIRED to the client', async () => {
    server = await startTestLibsqlServer({ streamIdleTimeoutMs: 50 })
    const client = server.client()
    await client.execute('CREATE TABLE t (x)')
    const tx = await client.transaction('write')
    await tx.execute('INSERT INTO t VALUES (1)')
    expect(server.openStreamCount()).toBe(1)

    await expect.poll(() => server?.openStreamCount(), { timeout: 5_000 }).toBe(0)

    await expect(tx.execute('INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: 'STREAM_EXPIRED' })
    // The rolled back transaction released the write lock and left nothing behind.
    await client.execute('INSERT INTO t VALUES (3)')
    expect((await client.execute('SELECT x FROM t')).rows.map((r) => r.x)).toEqual([3])
  })

  it('keeps a stream that is used more often than the idle timeout', async () => {
    server = await startTestLibsqlServer({ streamIdleTimeoutMs: 1_000 })
    let baton = (await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }] })).baton
    for (let i = 0; i < 5; i++) {
      baton = (await server.pipeline({ baton, requests: [SELECT_ONE] })).baton
    }
    const done = await server.pipeline({ baton, requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'close' }] })
    expect(done.results.map((r) => r.type)).toEqual(['ok', 'ok'])
  })

  it('refuses new streams past MAX_OPEN_STREAMS until one closes', async () => {
    const full = await startTestLibsqlServer()
    server = full
    const opened = await Promise.all(Array.from({ length: MAX_OPEN_STREAMS }, () => full.pipeline({ requests: [] })))
    const refused = await server.post({ requests: [] })
    expect(refused.status).toBe(503)
    expect(await refused.json()).toMatchObject({ code: 'TOO_MANY_STREAMS' })
    await server.pipeline({ baton: opened[0]?.baton, requests: [{ type: 'close' }] })
    expect((await server.pipeline({ requests: [{ type: 'close' }] })).baton).toBeNull()
  })
})
