import { describe, expect, it } from 'vitest'
import { createApp } from '../../control-plane/app.ts'
import { call } from './support.ts'

/** Hono's `/:id{.+}/:command{a|b}` in OpenAPI's form, `/{id}/{command}`. */
function openApiPath(honoPath: string): string {
  return honoPath.replaceAll(/:(\w+)(\{[^}]*\})?/g, '{$1}')
}

describe('GET /openapi.json', () => {
  it('describes every route of the app, with both error shapes', async () => {
    const response = await call('GET', '/openapi.json', { token: null })
    expect(response.status).toBe(200)
    const document: { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } } =
      await response.json()
    expect(document.openapi).toBe('3.1.0')
    expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(['OpenAIError', 'NativeError']))

    const routes = createApp().routes.filter((r) => r.method !== 'ALL')
    expect(routes.length).toBeGreaterThan(20)
    const missing = routes.filter((r) => document.paths[openApiPath(r.path)]?.[r.method.toLowerCase()] === undefined).map((r) => `${r.method} ${r.path}`)
    expect(missing).toEqual([])
    // And nothing is documented that the app does not serve.
    const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`))
    const documented = Object.entries(document.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`))
    expect(documented.filter((op) => !served.has(op))).toEqual([])
  })
})
