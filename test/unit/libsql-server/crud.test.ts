import { createClient } from '@libsql/client'
import { eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/libsql'
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { afterEach, describe, expect, it } from 'vitest'
import { startLibsqlServer } from '../../../db/libsql-server/index.ts'
import { startTestLibsqlServer, type ClientKind, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const notes = sqliteTable('notes', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  title: text('title').notNull(),
  body: text('body'),
})

const CREATE_NOTES = 'CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, body TEXT)'

describe('libsql server CRUD', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  for (const kind of ['node', 'web'] satisfies ClientKind[]) {
    it(`creates, reads, updates and deletes rows through @libsql/client (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const client = server.client(kind)
      await client.execute(CREATE_NOTES)

      const inserted = await client.execute({ sql: 'INSERT INTO notes (title, body) VALUES (?, ?)', args: ['first', 'hello'] })
      expect(inserted.rowsAffected).toBe(1)
      expect(inserted.lastInsertRowid).toBe(1n)
      await client.execute({ sql: 'INSERT INTO notes (title) VALUES (:title)', args: { title: 'second' } })

      const read = await client.execute('SELECT id, title, body FROM notes ORDER BY id')
      expect(read.columns).toEqual(['id', 'title', 'body'])
      expect(read.columnTypes).toEqual(['INTEGER', 'TEXT', 'TEXT'])
      expect(read.rows.map((r) => ({ ...r }))).toEqual([
        { id: 1, title: 'first', body: 'hello' },
        { id: 2, title: 'second', body: null },
      ])

      const updated = await client.execute({ sql: 'UPDATE notes SET body = $body WHERE id > :min', args: { body: 'x', min: 0 } })
      expect(updated.rowsAffected).toBe(2)
      const deleted = await client.execute({ sql: 'DELETE FROM notes WHERE title = @t', args: { '@t': 'first' } })
      expect(deleted.rowsAffected).toBe(1)
      const left = await client.execute('SELECT count(*) AS n FROM notes')
      expect(left.rows[0]?.n).toBe(1)
    })
  }

  it('creates, reads, updates and deletes rows through drizzle-orm/libsql', async () => {
    server = await startTestLibsqlServer()
    const db = drizzle(server.client())
    await db.run(CREATE_NOTES)

    const [created] = await db.insert(notes).values({ title: 'a', body: 'one' }).returning()
    expect(created).toEqual({ id: 1, title: 'a', body: 'one' })
    await db.insert(notes).values([{ title: 'b' }, { title: 'c' }])
    await db.update(notes).set({ body: 'two' }).where(eq(notes.title, 'b'))
    await db.delete(notes).where(eq(notes.title, 'c'))

    expect(await db.select().from(notes).orderBy(notes.id)).toEqual([
      { id: 1, title: 'a', body: 'one' },
      { id: 2, title: 'b', body: 'two' },
    ])
  })

  it('reports no affected rows for a read after a write on the same stream', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute(CREATE_NOTES)
    const [insert, select, ddl] = await client.batch(["INSERT INTO notes (title) VALUES ('a')", 'SELECT * FROM notes', 'CREATE TABLE other (x)'])
    expect([insert?.rowsAffected, select?.rowsAffected, ddl?.rowsAffected]).toEqual([1, 0, 0])
  })

  it('runs several statements in one string with executeMultiple', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.executeMultiple(`
      ${CREATE_NOTES};
      -- a comment; with a semicolon
      INSERT INTO notes (title) VALUES ('semi;colon');
      CREATE TRIGGER notes_body AFTER INSERT ON notes BEGIN
        UPDATE notes SET body = 'from trigger; still the trigger' WHERE id = new.id;
      END;
      INSERT INTO notes (title) VALUES ('second');
    `)
    const rows = await client.execute('SELECT title, body FROM notes ORDER BY id')
    expect(rows.rows.map((r) => [r.title, r.body])).toEqual([
      ['semi;colon', null],
      ['second', 'from trigger; still the trigger'],
    ])
  })

  it('shares the database file with a second server opened on it', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    await client.execute(CREATE_NOTES)
    await client.execute("INSERT INTO notes (title) VALUES ('kept')")
    const second = await startLibsqlServer({ file: server.file })
    try {
      const other = createClient({ url: second.url })
      expect((await other.execute('SELECT title FROM notes')).rows[0]?.title).toBe('kept')
      other.close()
    } finally {
      await second.close()
    }
  })
})
