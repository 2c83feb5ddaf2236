import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const CLIENTS = 8
const WRITES_PER_CLIENT = 25

describe('libsql server concurrency', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('lands every write when several clients write at once', async () => {
    const shared = await startTestLibsqlServer()
    server = shared
    await server.client().execute('CREATE TABLE log (client INTEGER, n INTEGER)')
    const writers = Array.from({ length: CLIENTS }, (_, c) => shared.client(c % 2 === 0 ? 'node' : 'web'))
    await Promise.all(
      writers.map(async (client, c) => {
        const single = Array.from({ length: WRITES_PER_CLIENT }, (_, n) => client.execute({ sql: 'INSERT INTO log VALUES (?, ?)', args: [c, n] }))
        const batched = client.batch([`INSERT INTO log VALUES (${c}, -1)`, `INSERT INTO log VALUES (${c}, -2)`], c % 2 === 0 ? 'write' : 'deferred')
        await Promise.all([...single, batched])
      }),
    )
    const count = await server.client().execute('SELECT count(*) AS n FROM log')
    expect(count.rows[0]?.n).toBe(CLIENTS * (WRITES_PER_CLIENT + 2))
  })

  it('lets a write wait for an open transaction instead of deadlocking, then lands it', async () => {
    server = await startTestLibsqlServer()
    const holder = server.client()
    const writer = server.client('web')
    await holder.execute('CREATE TABLE log (who TEXT)')

    const tx = await holder.transaction('write')
    await tx.execute("INSERT INTO log VALUES ('tx')")
    // The transaction holds the write lock, so this write must wait for it, not fail.
    const pending = writer.execute("INSERT INTO log VALUES ('writer')")
    // Reads still work on other streams meanwhile and the transaction can keep going.
    expect((await writer.execute('SELECT count(*) AS n FROM log')).rows[0]?.n).toBe(0)
    await tx.execute("INSERT INTO log VALUES ('tx again')")
    await tx.commit()
    await pending

    const rows = await holder.execute('SELECT who FROM log ORDER BY rowid')
    expect(rows.rows.map((r) => r.who)).toEqual(['tx', 'tx again', 'writer'])
  })

  it('serializes competing interactive transactions', async () => {
    const shared = await startTestLibsqlServer()
    server = shared
    await server.client().batch(['CREATE TABLE counter (value INTEGER)', 'INSERT INTO counter VALUES (0)'])
    const increments = Array.from({ length: 6 }, async (_, i) => {
      const tx = await shared.client(i % 2 === 0 ? 'node' : 'web').transaction('write')
      const current = await tx.execute('SELECT value FROM counter')
      await tx.execute({ sql: 'UPDATE counter SET value = ?', args: [Number(current.rows[0]?.value) + 1] })
      await tx.commit()
    })
    await Promise.all(increments)
    expect((await server.client().execute('SELECT value FROM counter')).rows[0]?.value).toBe(6)
  })

  it('gives up with SQLITE_BUSY after the retry limit when the lock is never released', async () => {
    server = await startTestLibsqlServer({ busyRetryLimitMs: 50 })
    const holder = server.client()
    await holder.execute('CREATE TABLE t (x)')
    const tx = await holder.transaction('write')
    await tx.execute('INSERT INTO t VALUES (1)')
    await expect(server.client().execute('INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: 'SQLITE_BUSY' })
    await tx.rollback()
  })

  it('lands later writes on a stream whose earlier write gave up on SQLITE_BUSY', async () => {
    server = await startTestLibsqlServer({ busyRetryLimitMs: 20 })
    await server.client().execute('CREATE TABLE t (x)')
    const holder = await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'BEGIN IMMEDIATE' } }] })
    const waiter = await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: "INSERT INTO t VALUES ('gave up')" } }] })
    expect(waiter.results[0]).toMatchObject({ type: 'error', error: { code: 'SQLITE_BUSY' } })
    await server.pipeline({ baton: holder.baton, requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'close' }] })

    const later = await server.pipeline({
      baton: waiter.baton,
      requests: [{ type: 'execute', stmt: { sql: "INSERT INTO t VALUES ('later')" } }, { type: 'close' }],
    })
    expect(later.results.map((r) => r.type)).toEqual(['ok', 'ok'])
    expect((await server.client().execute('SELECT x FROM t')).rows.map((r) => r.x)).toEqual(['later'])
  })
})
