import { LibsqlError } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (error: unknown) => error,
  )
}

describe('libsql server SQL errors', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('reports a unique constraint violation with its extended SQLite code', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute('CREATE TABLE users (email TEXT UNIQUE)')
    await client.execute("INSERT INTO users VALUES ('a@example.com')")
    const error = await failureOf(client.execute("INSERT INTO users VALUES ('a@example.com')"))
    expect(error).toBeInstanceOf(LibsqlError)
    expect(error).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE', message: expect.stringContaining('UNIQUE constraint failed: users.email') })
  })

  it('enforces foreign keys on every connection', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.batch(['CREATE TABLE parents (id INTEGER PRIMARY KEY)', 'CREATE TABLE children (parent_id INTEGER REFERENCES parents(id))'])
    const error = await failureOf(client.execute('INSERT INTO children VALUES (1)'))
    expect(error).toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
  })

  it('reports NOT NULL, syntax and missing table errors with their codes', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute('CREATE TABLE t (x TEXT NOT NULL)')
    expect(await failureOf(client.execute('INSERT INTO t VALUES (NULL)'))).toMatchObject({ code: 'SQLITE_CONSTRAINT_NOTNULL' })
    expect(await failureOf(client.execute('SELEC 1'))).toMatchObject({ code: 'SQLITE_ERROR', message: expect.stringContaining('syntax error') })
    expect(await failureOf(client.execute('SELECT * FROM nowhere'))).toMatchObject({ code: 'SQLITE_ERROR', message: expect.stringContaining('no such table') })
  })

  it('refuses an execute with several statements or none', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    expect(await failureOf(client.execute('SELECT 1; SELECT 2'))).toMatchObject({ code: 'SQL_MANY_STATEMENTS' })
    expect(await failureOf(client.execute(' -- only a comment\n;'))).toMatchObject({ code: 'SQL_NO_STATEMENT' })
    expect((await client.execute('SELECT 1 AS one; -- trailing comment')).rows[0]?.one).toBe(1)
  })

  it('refuses more positional arguments than parameters and a mix of positional and named ones', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        { type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'null' }, { type: 'null' }] } },
        { type: 'execute', stmt: { sql: 'SELECT ?, :a', args: [{ type: 'null' }], named_args: [{ name: 'a', value: { type: 'null' } }] } },
        { type: 'close' },
      ],
    })
    expect(body.results.map((r) => (r.type === 'error' ? r.error.code : r.type))).toEqual(['ARGS_INVALID', 'ARGS_BOTH_POSITIONAL_AND_NAMED', 'ok'])
  })

  it('answers each failing request in its own result and runs the rest of the pipeline', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        { type: 'execute', stmt: { sql: 'CREATE TABLE t (x UNIQUE)' } },
        { type: 'execute', stmt: { sql: 'INSERT INTO t VALUES (1)' } },
        { type: 'execute', stmt: { sql: 'INSERT INTO t VALUES (1)' } },
        { type: 'execute', stmt: { sql: 'SELECT count(*) FROM t' } },
        { type: 'close' },
      ],
    })
    expect(body.results.map((r) => r.type)).toEqual(['ok', 'ok', 'error', 'ok', 'ok'])
    expect(body.results[2]).toEqual({ type: 'error', error: { code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'SQLite error: UNIQUE constraint failed: t.x' } })
    expect(body.results[3]).toMatchObject({ response: { result: { rows: [[{ type: 'integer', value: '1' }]] } } })
    expect(body.baton).toBeNull()
  })
})
