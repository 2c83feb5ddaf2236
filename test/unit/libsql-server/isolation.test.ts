import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

describe('libsql server stream isolation', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('does not carry a pragma from one stream into the next', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.batch(['CREATE TABLE parents (id INTEGER PRIMARY KEY)', 'CREATE TABLE children (parent_id INTEGER REFERENCES parents(id))'])
    await client.execute('PRAGMA foreign_keys = OFF')
    await expect(client.execute('INSERT INTO children VALUES (1)')).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
  })

  it('does not carry temp tables from one stream into the next', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute('CREATE TEMP TABLE scratch (x)')
    await expect(client.execute('SELECT * FROM temp.scratch')).rejects.toMatchObject({ message: expect.stringContaining('no such table') })
  })

  it('reports the inserted rowid only for statements that wrote rows', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, x)')
    expect((await client.execute("INSERT INTO t (id, x) VALUES (41, 'a')")).lastInsertRowid).toBe(41n)
    expect((await client.execute('SELECT * FROM t')).lastInsertRowid).toBeUndefined()
    expect((await client.execute('INSERT OR IGNORE INTO t (id, x) VALUES (41, 1)')).lastInsertRowid).toBeUndefined()
  })

  it('rolls back a transaction left open when its stream closes before the connection serves another stream', async () => {
    server = await startTestLibsqlServer()
    await server.client().execute('CREATE TABLE t (x)')
    const open = await server.pipeline({
      requests: [
        { type: 'execute', stmt: { sql: 'BEGIN' } },
        { type: 'execute', stmt: { sql: 'INSERT INTO t VALUES (1)' } },
      ],
    })
    await server.pipeline({ baton: open.baton, requests: [{ type: 'close' }] })
    const next = await server.pipeline({
      requests: [{ type: 'get_autocommit' }, { type: 'execute', stmt: { sql: 'SELECT count(*) FROM t' } }, { type: 'close' }],
    })
    expect(next.results[0]).toEqual({ type: 'ok', response: { type: 'get_autocommit', is_autocommit: true } })
    expect(next.results[1]).toMatchObject({ response: { result: { rows: [[{ type: 'integer', value: '0' }]] } } })
  })
})
