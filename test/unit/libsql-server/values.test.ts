import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type ClientKind, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

describe('libsql server typed values', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  for (const kind of ['node', 'web'] satisfies ClientKind[]) {
    it(`round-trips integers, big integers, floats, text, blobs and null (${kind})`, async () => {
      server = await startTestLibsqlServer()
      const client = server.client(kind, { intMode: 'bigint' })
      await client.execute('CREATE TABLE v (i INTEGER, f REAL, t TEXT, b BLOB, n)')
      const blob = new Uint8Array([0, 1, 2, 253, 254, 255])
      const values = [
        [9_223_372_036_854_775_807n, 1.5, 'héllo wörld ✓ 𝄞', blob, null],
        [-9_223_372_036_854_775_808n, -0.000_001, '', new Uint8Array(0), null],
        [2n ** 53n + 1n, 1e300, 'it\'s "quoted"\n', new Uint8Array([42]), null],
      ] as const
      for (const row of values) await client.execute({ sql: 'INSERT INTO v VALUES (?, ?, ?, ?, ?)', args: [...row] })

      const result = await client.execute('SELECT i, f, t, b, n, typeof(i) AS ti, typeof(f) AS tf, typeof(b) AS tb FROM v ORDER BY rowid')
      result.rows.forEach((row, k) => {
        const [i, f, t, b] = values[k] ?? []
        expect(row.i).toBe(i)
        expect(row.f).toBe(f)
        expect(row.t).toBe(t)
        if (!(row.b instanceof ArrayBuffer)) throw new Error(`expected a blob in row ${k}, got ${typeof row.b}`)
        expect(new Uint8Array(row.b)).toEqual(b)
        expect(row.n).toBeNull()
        expect([row.ti, row.tf, row.tb]).toEqual(['integer', 'real', 'blob'])
      })
    })
  }

  it('keeps an integer-valued REAL a float and an INTEGER an integer on the wire', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({
      requests: [
        {
          type: 'execute',
          stmt: {
            sql: 'SELECT 2.0, 2, ?, ?',
            args: [
              { type: 'float', value: 3 },
              { type: 'integer', value: '3' },
            ],
          },
        },
        { type: 'close' },
      ],
    })
    expect(body.results[0]).toMatchObject({
      response: {
        result: {
          rows: [
            [
              { type: 'float', value: 2 },
              { type: 'integer', value: '2' },
              { type: 'float', value: 3 },
              { type: 'integer', value: '3' },
            ],
          ],
        },
      },
    })
  })

  it('binds booleans and dates the way @libsql/client encodes them', async () => {
    server = await startTestLibsqlServer()
    const client = server.client()
    const when = new Date('2026-01-02T03:04:05.678Z')
    const result = await client.execute({ sql: 'SELECT ? AS yes, ? AS no, ? AS at', args: [true, false, when] })
    expect({ ...result.rows[0] }).toEqual({ yes: 1, no: 0, at: when.getTime() })
  })

  it('leaves rows out but keeps columns when want_rows is false', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1 AS a', want_rows: false } }, { type: 'close' }] })
    expect(body.results[0]).toMatchObject({ response: { result: { cols: [{ name: 'a', decltype: null }], rows: [] } } })
  })
})
