import { LibsqlBatchError } from '@libsql/client'
import { drizzle } from 'drizzle-orm/libsql'
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type ClientKind, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const items = sqliteTable('items', {
  id: integer('id').primaryKey(),
  name: text('name').notNull().unique(),
})

const CREATE_ITEMS = 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)'

describe('libsql server batches', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  for (const kind of ['node', 'web'] satisfies ClientKind[]) {
    it(`commits every statement of a successful batch (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const client = server.client(kind)
      const results = await client.batch(
        [
          CREATE_ITEMS,
          { sql: 'INSERT INTO items (name) VALUES (?)', args: ['a'] },
          { sql: 'INSERT INTO items (name) VALUES (?)', args: ['b'] },
          'SELECT name FROM items ORDER BY id',
        ],
        'write',
      )
      expect(results).toHaveLength(4)
      expect(results[3]?.rows.map((r) => r.name)).toEqual(['a', 'b'])
    })

    it(`rolls back the whole batch when one statement fails (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const client = server.client(kind)
      await client.execute(CREATE_ITEMS)
      await client.execute("INSERT INTO items (name) VALUES ('taken')")

      const failure = await client
        .batch(["INSERT INTO items (name) VALUES ('new')", "INSERT INTO items (name) VALUES ('taken')", "INSERT INTO items (name) VALUES ('later')"])
        .then(
          () => undefined,
          (error: unknown) => error,
        )
      expect(failure).toBeInstanceOf(LibsqlBatchError)
      expect(failure).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE', statementIndex: 1 })

      const names = await client.execute('SELECT name FROM items ORDER BY id')
      expect(names.rows.map((r) => r.name)).toEqual(['taken'])
      expect(server.openStreamCount()).toBe(0)
    })
  }

  it('runs drizzle db.batch atomically', async () => {
    server = await startTestLibsqlServer()
    const db = drizzle(server.client())
    await db.run(CREATE_ITEMS)
    await db.batch([db.insert(items).values({ name: 'a' }), db.insert(items).values({ name: 'b' })])
    await expect(db.batch([db.insert(items).values({ name: 'c' }), db.insert(items).values({ name: 'a' })])).rejects.toMatchObject({
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    })
    expect((await db.select().from(items)).map((r) => r.name).sort()).toEqual(['a', 'b'])
  })

  it('reuses stored SQL texts for repeated statements in one batch', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute(CREATE_ITEMS)
    const names = Array.from({ length: 80 }, (_, i) => `item-${i}`)
    await client.batch(names.map((name) => ({ sql: 'INSERT INTO items (name) VALUES (?)', args: [name] })))
    expect((await client.execute('SELECT count(*) AS n FROM items')).rows[0]?.n).toBe(80)
  })
})
