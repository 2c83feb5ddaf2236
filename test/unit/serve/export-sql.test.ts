import { createClient } from '@libsql/client'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportRegistrySql, sqlLiteral } from '../../../serve/export-sql.ts'

describe('llorch serve export', () => {
  it('writes literals that keep integers, reals, text with quotes and blobs apart', () => {
    expect([null, 12n, 1.5, 2, "it's", new Uint8Array([0, 255]).buffer].map(sqlLiteral)).toEqual(['NULL', '12', '1.5', '2.0', "'it''s'", "X'00ff'"])
  })

  it('is SQL that rebuilds the same tables, rows, indexes and autoincrement counters in an empty database', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llorch-export-'))
    try {
      const source = createClient({ url: pathToFileURL(path.join(dir, 'source.db')).href })
      await source.executeMultiple(`
        CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, ratio REAL, data BLOB);
        CREATE UNIQUE INDEX t_name ON t (name);
        INSERT INTO t (name, ratio, data) VALUES ('a''b', 2.0, x'0102'), ('big', 0.25, NULL);
        INSERT INTO t (id, name) VALUES (9007199254740993, 'beyond double');
      `)
      source.close()
      let sql = ''
      const counts = await exportRegistrySql(path.join(dir, 'source.db'), (chunk) => (sql += chunk))
      expect(counts).toEqual({ tables: 1, rows: 3 })
      const target = createClient({ url: pathToFileURL(path.join(dir, 'target.db')).href, intMode: 'bigint' })
      await target.executeMultiple(sql)
      const rows = (await target.execute('SELECT id, name, typeof(ratio) AS ratio_type, hex(data) AS data FROM t ORDER BY id')).rows.map((r) => ({ ...r }))
      expect(rows).toEqual([
        { id: 1n, name: "a'b", ratio_type: 'real', data: '0102' },
        { id: 2n, name: 'big', ratio_type: 'real', data: '' },
        { id: 9007199254740993n, name: 'beyond double', ratio_type: 'null', data: '' },
      ])
      await expect(target.execute("INSERT INTO t (name) VALUES ('big')")).rejects.toThrow(/UNIQUE/)
      expect((await target.execute("SELECT seq FROM sqlite_sequence WHERE name = 't'")).rows[0]?.[0]).toBe(9007199254740993n)
      target.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
