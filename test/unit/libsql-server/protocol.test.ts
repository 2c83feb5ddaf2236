import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

const sql = (text: string) => ({ sql: text })

describe('libsql server Hrana requests', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('evaluates batch conditions ok, error, not, and, or and is_autocommit', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        {
          type: 'batch',
          batch: {
            steps: [
              { stmt: sql('SELECT 1') },
              { stmt: sql('SELECT * FROM missing') },
              { condition: { type: 'ok', step: 0 }, stmt: sql("SELECT 'ok 0'") },
              { condition: { type: 'ok', step: 1 }, stmt: sql("SELECT 'ok 1'") },
              { condition: { type: 'error', step: 1 }, stmt: sql("SELECT 'error 1'") },
              { condition: { type: 'not', cond: { type: 'ok', step: 1 } }, stmt: sql("SELECT 'not ok 1'") },
              {
                condition: {
                  type: 'and',
                  conds: [
                    { type: 'ok', step: 0 },
                    { type: 'ok', step: 1 },
                  ],
                },
                stmt: sql("SELECT 'and'"),
              },
              {
                condition: {
                  type: 'or',
                  conds: [
                    { type: 'ok', step: 0 },
                    { type: 'ok', step: 1 },
                  ],
                },
                stmt: sql("SELECT 'or'"),
              },
              { condition: { type: 'ok', step: 3 }, stmt: sql("SELECT 'after skipped'") },
              { condition: { type: 'error', step: 3 }, stmt: sql("SELECT 'error of skipped'") },
              { condition: { type: 'is_autocommit' }, stmt: sql('BEGIN') },
              { condition: { type: 'is_autocommit' }, stmt: sql("SELECT 'still autocommit'") },
              { condition: { type: 'not', cond: { type: 'is_autocommit' } }, stmt: sql('ROLLBACK') },
              { condition: { type: 'and', conds: [] }, stmt: sql("SELECT 'empty and'") },
              { condition: { type: 'or', conds: [] }, stmt: sql("SELECT 'empty or'") },
            ],
          },
        },
        { type: 'close' },
      ],
    })
    const batch = body.results[0]
    if (batch?.type !== 'ok' || batch.response.type !== 'batch') throw new Error(`expected a batch result, got ${JSON.stringify(batch)}`)
    const ran = batch.response.result.step_results.map((r) => r !== null)
    const failed = batch.response.result.step_errors.map((e) => e?.code ?? null)
    expect(ran).toEqual([true, false, true, false, true, true, false, true, false, false, true, false, true, true, false])
    expect(failed).toEqual([null, 'SQLITE_ERROR', ...Array(13).fill(null)])
  })

  it('runs a sequence up to its first failing statement', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        { type: 'sequence', sql: "CREATE TABLE t (x); INSERT INTO t VALUES ('a'); INSERT INTO nowhere VALUES (1); INSERT INTO t VALUES ('b')" },
        { type: 'execute', stmt: sql('SELECT x FROM t') },
        { type: 'sequence', sql: '  ' },
        { type: 'close' },
      ],
    })
    expect(body.results[0]).toMatchObject({ type: 'error', error: { code: 'SQLITE_ERROR', message: expect.stringContaining('no such table: nowhere') } })
    expect(body.results[1]).toMatchObject({ response: { result: { rows: [[{ type: 'text', value: 'a' }]] } } })
    expect(body.results[2]).toEqual({ type: 'ok', response: { type: 'sequence' } })
  })

  it('describes parameters, columns and whether a statement writes', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        { type: 'execute', stmt: sql('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)') },
        { type: 'describe', sql: 'SELECT id, name AS n FROM t WHERE id = :id OR name = ? OR name = ?5' },
        { type: 'describe', sql: 'INSERT INTO t (name) VALUES (@name)' },
        { type: 'describe', sql: 'EXPLAIN SELECT 1' },
        { type: 'describe', sql: 'BEGIN' },
        { type: 'describe', sql: 'SELECT 1; SELECT 2' },
        { type: 'close' },
      ],
    })
    expect(body.results.slice(1, 6)).toEqual([
      {
        type: 'ok',
        response: {
          type: 'describe',
          result: {
            params: [{ name: ':id' }, { name: null }, { name: null }, { name: null }, { name: '?5' }],
            cols: [
              { name: 'id', decltype: 'INTEGER' },
              { name: 'n', decltype: 'TEXT' },
            ],
            is_explain: false,
            is_readonly: true,
          },
        },
      },
      { type: 'ok', response: { type: 'describe', result: { params: [{ name: '@name' }], cols: [], is_explain: false, is_readonly: false } } },
      { type: 'ok', response: { type: 'describe', result: expect.objectContaining({ is_explain: true, is_readonly: true }) } },
      { type: 'ok', response: { type: 'describe', result: { params: [], cols: [], is_explain: false, is_readonly: true } } },
      { type: 'error', error: expect.objectContaining({ code: 'SQL_MANY_STATEMENTS' }) },
    ])
  })

  it('refuses a reused sql_id, an oversized SQL text and more stored texts than sqld allows', async () => {
    server = await startTestLibsqlServer()
    const stores = Array.from({ length: 51 }, (_, i) => ({ type: 'store_sql', sql_id: i, sql: 'SELECT 1' }))
    const body = await server.pipeline({
      requests: [
        { type: 'store_sql', sql_id: 99, sql: `SELECT '${'x'.repeat(5_000)}'` },
        ...stores,
        { type: 'store_sql', sql_id: 0, sql: 'SELECT 2' },
        { type: 'close' },
      ],
    })
    const codes = body.results.map((r) => (r.type === 'error' ? r.error.code : 'ok'))
    expect(codes[0]).toBe('SQL_STORE_TOO_LARGE')
    expect(codes.slice(1, 51).every((c) => c === 'ok')).toBe(true)
    expect(codes.slice(51)).toEqual(['SQL_STORE_TOO_MANY', 'SQL_ID_EXISTS', 'ok'])
  })

  it('answers requests after a close in the same pipeline with STREAM_CLOSED', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({ requests: [{ type: 'close' }, { type: 'execute', stmt: sql('SELECT 1') }] })
    expect(body.results[1]).toMatchObject({ type: 'error', error: { code: 'STREAM_CLOSED' } })
    expect(body.baton).toBeNull()
  })

  it('matches named arguments with or without their prefix', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        {
          type: 'execute',
          stmt: {
            sql: 'SELECT :a, @b, $c, :a, :unset',
            named_args: [
              { name: 'a', value: { type: 'text', value: 'A' } },
              { name: '@b', value: { type: 'text', value: 'B' } },
              { name: 'c', value: { type: 'text', value: 'C' } },
              { name: 'extra', value: { type: 'text', value: 'ignored' } },
            ],
          },
        },
        { type: 'close' },
      ],
    })
    expect(body.results[0]).toMatchObject({
      response: { result: { rows: [[{ value: 'A' }, { value: 'B' }, { value: 'C' }, { value: 'A' }, { type: 'null' }]] } },
    })
  })
})
