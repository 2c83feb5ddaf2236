import { describe, expect, it } from 'vitest'
import { scanStatements } from '../../../db/libsql-server/sql-scanner.ts'

const texts = (sql: string) => scanStatements(sql).map((s) => s.sql.trim())
const params = (sql: string) => scanStatements(sql)[0]?.params

describe('libsql server SQL scanner', () => {
  it('splits statements on semicolons outside strings, identifiers and comments', () => {
    expect(
      texts(`SELECT 'a;b'; SELECT "c;d", [e;f], \`g;h\` -- i;j
      ; /* k;l */ SELECT 'it''s;'`),
    ).toEqual([`SELECT 'a;b'`, 'SELECT "c;d", [e;f], `g;h` -- i;j', `SELECT 'it''s;'`])
  })

  it('keeps a CREATE TRIGGER body with its semicolons in one statement', () => {
    const sql = `CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); UPDATE u SET x = 2; END; SELECT 1`
    expect(texts(sql)).toEqual([sql.slice(0, sql.indexOf('END;') + 3), 'SELECT 1'])
    expect(texts('EXPLAIN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END')).toHaveLength(1)
    expect(texts("SELECT CASE WHEN 1 THEN 'x' END; SELECT 2")).toEqual(["SELECT CASE WHEN 1 THEN 'x' END", 'SELECT 2'])
  })

  it('drops empty statements and trailing comments', () => {
    expect(texts(' ;; -- nothing\n /* here */ ;')).toEqual([])
    expect(texts('SELECT 1; -- done')).toEqual(['SELECT 1'])
    expect(texts('SELECT 1 -- no semicolon')).toEqual(['SELECT 1'])
  })

  it('numbers parameters the way SQLite does', () => {
    expect(params('SELECT ?, ?, ?')).toEqual([null, null, null])
    expect(params('SELECT ?3, ?')).toEqual([null, null, '?3', null])
    expect(params('SELECT :a, @b, $c, :a, ?')).toEqual([':a', '@b', '$c', null])
    expect(params('SELECT :a, ?1')).toEqual([':a'])
    expect(params('SELECT ?, ?1')).toEqual(['?1'])
    expect(params('SELECT $x::y(z), :a_1$')).toEqual(['$x::y(z)', ':a_1$'])
  })

  it('ignores parameter-like text inside literals, identifiers and comments', () => {
    expect(
      params(`SELECT ':a', "?", [@b], x'00', a$b, 1 -- :c
      /* ?2 */ FROM t WHERE y = :real`),
    ).toEqual([':real'])
    expect(params('SELECT 1')).toEqual([])
  })

  it('marks EXPLAIN statements', () => {
    expect(scanStatements('explain query plan SELECT 1; SELECT 2').map((s) => s.isExplain)).toEqual([true, false])
  })
})
