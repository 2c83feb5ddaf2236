import { drizzle } from 'drizzle-orm/libsql'
import { integer, sqliteTable } from 'drizzle-orm/sqlite-core'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type ClientKind, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const counters = sqliteTable('counters', { id: integer('id').primaryKey(), value: integer('value').notNull() })

async function withCounter(server: TestLibsqlServer) {
  const client = server.client()
  await client.execute('CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)')
  await client.execute('INSERT INTO counters (id, value) VALUES (1, 0)')
  return client
}

describe('libsql server interactive transactions', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  for (const kind of ['node', 'web'] satisfies ClientKind[]) {
    it(`keeps the writes of a committed transaction (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const reader = await withCounter(server)
      const tx = await server.client(kind).transaction('write')
      await tx.execute('UPDATE counters SET value = value + 1 WHERE id = 1')
      const inside = await tx.execute('SELECT value FROM counters WHERE id = 1')
      expect(inside.rows[0]?.value).toBe(1)
      // Another stream does not see uncommitted writes.
      expect((await reader.execute('SELECT value FROM counters')).rows[0]?.value).toBe(0)
      await tx.commit()
      expect((await reader.execute('SELECT value FROM counters')).rows[0]?.value).toBe(1)
      expect(server.openStreamCount()).toBe(0)
    })

    it(`discards the writes of a rolled back transaction (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const reader = await withCounter(server)
      const tx = await server.client(kind).transaction('write')
      await tx.execute('UPDATE counters SET value = 42 WHERE id = 1')
      await tx.rollback()
      expect((await reader.execute('SELECT value FROM counters')).rows[0]?.value).toBe(0)
      expect(server.openStreamCount()).toBe(0)
    })
  }

  it('reports autocommit state through the stream', async () => {
    server = await startTestLibsqlServer()
    const first = await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }, { type: 'get_autocommit' }] })
    expect(first.results[1]).toEqual({ type: 'ok', response: { type: 'get_autocommit', is_autocommit: false } })
    const second = await server.pipeline({
      baton: first.baton,
      requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'get_autocommit' }, { type: 'close' }],
    })
    expect(second.results[1]).toEqual({ type: 'ok', response: { type: 'get_autocommit', is_autocommit: true } })
  })

  it('commits a drizzle transaction and rolls back one that throws', async () => {
    server = await startTestLibsqlServer()
    const db = drizzle(await withCounter(server))
    await db.transaction(async (tx) => {
      await tx.update(counters).set({ value: 5 })
    })
    await expect(
      db.transaction(async (tx) => {
        await tx.update(counters).set({ value: 99 })
        throw new Error('changed my mind')
      }),
    ).rejects.toThrow('changed my mind')
    expect(await db.select().from(counters)).toEqual([{ id: 1, value: 5 }])
  })

  it('rolls back an open transaction when the client closes the stream', async () => {
    server = await startTestLibsqlServer()
    const reader = await withCounter(server)
    const tx = await server.client().transaction('write')
    await tx.execute('UPDATE counters SET value = 7')
    tx.close()
    await expect.poll(() => server?.openStreamCount(), { timeout: 5_000 }).toBe(0)
    expect((await reader.execute('SELECT value FROM counters')).rows[0]?.value).toBe(0)
    // The write lock is free again.
    await reader.execute('UPDATE counters SET value = 1')
  })
})
