import { describe, expect, it } from 'vitest'
import { ApiKeyList, CreateApiKeyResponse, NativeErrorBody } from '../../protocol/index.ts'
import { call, uniqueName } from './support.ts'

describe('/v2/api-keys', () => {
  it('issues a key shown once and lists it without the secret', async () => {
    const created = await call('POST', '/v2/api-keys', { body: { name: uniqueName('app'), scopes: ['inference'] } })
    expect(created.status).toBe(201)
    const key = CreateApiKeyResponse.parse(await created.json())
    expect(key.key).toMatch(/^llk\.key_/)
    expect(key.key.startsWith(key.prefix)).toBe(true)
    const listed = ApiKeyList.parse(await (await call('GET', '/v2/api-keys')).json())
    const views = listed.api_keys
    expect(views.find((v) => v.id === key.id)).toMatchObject({ scopes: ['inference'], revoked_at: null })
    expect(JSON.stringify(listed)).not.toContain(key.key)
  })

  it('lets an admin-scoped key use the admin API and refuses an inference-only key with 403', async () => {
    const admin = CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('ops'), scopes: ['admin'] } })).json())
    expect((await call('GET', '/v2/nodes', { token: admin.key })).status).toBe(200)

    const inference = CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('app') } })).json())
    const refused = await call('GET', '/v2/nodes', { token: inference.key })
    expect(refused.status).toBe(403)
    expect(NativeErrorBody.parse(await refused.json()).error.code).toBe('forbidden')
  })

  it('refuses a revoked key at once in the isolate that revoked it', async () => {
    const admin = CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('ops'), scopes: ['admin'] } })).json())
    expect((await call('GET', '/v2/nodes', { token: admin.key })).status).toBe(200)
    expect((await call('DELETE', `/v2/api-keys/${admin.id}`)).status).toBe(200)
    expect((await call('GET', '/v2/nodes', { token: admin.key })).status).toBe(401)
  })

  it('refuses an unknown scope with 400', async () => {
    const response = await call('POST', '/v2/api-keys', { body: { name: 'x', scopes: ['root'] } })
    expect(response.status).toBe(400)
    expect(NativeErrorBody.parse(await response.json()).error.message).toContain('scopes[0]')
  })
})
