import { afterEach, describe, expect, it } from 'vitest'
import { startTestLibsqlServer, type TestLibsqlServer } from '../../support/libsql-server-fixture.ts'

describe('libsql server HTTP surface', () => {
  let server: TestLibsqlServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('answers 200 on the v2 and v3 version endpoints and 404 on the protobuf probe', async () => {
    server = await startTestLibsqlServer()
    for (const path of ['/v2', '/v3']) expect((await fetch(new URL(path, server.url))).status).toBe(200)
    for (const path of ['/v3-protobuf', '/v3-protobuf/pipeline']) {
      const response = await fetch(new URL(path, server.url))
      expect(response.status).toBe(404)
      expect(response.headers.get('content-type')).toBe('application/json')
    }
  })

  it('serves the same pipeline on /v3/pipeline as on /v2/pipeline', async () => {
    server = await startTestLibsqlServer()
    const body = await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }, { type: 'close' }] }, { path: '/v3/pipeline' })
    expect(body).toMatchObject({ baton: null, base_url: null, results: [{ type: 'ok' }, { type: 'ok', response: { type: 'close' } }] })
  })

  it('answers 404 JSON to unknown routes and to the wrong method', async () => {
    server = await startTestLibsqlServer()
    const unknown = await fetch(new URL('/v1/execute', server.url), { method: 'POST', body: '{}' })
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND' })
    expect((await fetch(new URL('/v2/pipeline', server.url))).status).toBe(404)
  })

  it('answers 400 with a clear message when the body is not JSON', async () => {
    server = await startTestLibsqlServer()
    const response = await server.post('{"requests": [')
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/json')
    expect(await response.json()).toMatchObject({ code: 'BODY_INVALID', message: expect.stringContaining('not valid JSON') })
  })

  it('answers 400 naming the field when the pipeline body does not match the protocol', async () => {
    server = await startTestLibsqlServer()
    const cases: [unknown, string][] = [
      [{}, 'requests'],
      [{ requests: [{ type: 'execute' }] }, 'requests[0].stmt'],
      [{ requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'integer', value: 1 }] } }] }, 'requests[0].stmt.args[0].value'],
      [{ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1', sql_id: 1 } }] }, 'exactly one of `sql` and `sql_id`'],
      [{ requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'integer', value: '9223372036854775808' }] } }] }, '64-bit'],
      [{ requests: [{ type: 'batch', batch: { steps: [{ condition: { type: 'ok', step: 0 }, stmt: { sql: 'SELECT 1' } }] } }] }, 'earlier steps'],
      [{ requests: [{ type: 'frobnicate' }] }, 'requests[0].type'],
    ]
    for (const [body, mentions] of cases) {
      const response = await server.post(body)
      expect(response.status, JSON.stringify(body)).toBe(400)
      expect(await response.json()).toMatchObject({ code: 'BODY_INVALID', message: expect.stringContaining(mentions) })
    }
    expect(server.openStreamCount()).toBe(0)
  })

  it('counts the pipelines and requests it served at GET /stats', async () => {
    server = await startTestLibsqlServer()
    const stats = async () => (await fetch(new URL('/stats', server?.url))).json()
    expect(await stats()).toEqual({ pipelines: 0, requests: 0 })
    await server.pipeline({ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }, { type: 'close' }] })
    expect(await stats()).toEqual({ pipelines: 1, requests: 2 })
  })
})
