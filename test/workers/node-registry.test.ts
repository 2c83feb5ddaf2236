import { describe, expect, it } from 'vitest'
import { CreateNodeResponse, NativeErrorBody, NodeList, NodeView } from '../../protocol/index.ts'
import { call, uniqueName } from './support.ts'

describe('/v2/nodes', () => {
  it('registers a node in libSQL and shows its token once', async () => {
    const name = uniqueName('gpu-box')
    const created = await call('POST', '/v2/nodes', { body: { name, labels: { rack: 'a1' } } })
    expect(created.status).toBe(201)
    const node = CreateNodeResponse.parse(await created.json())
    expect(node).toMatchObject({ name, labels: { rack: 'a1' }, status: 'new', replicas: [] })
    expect(node.token).toMatch(/^lln\.node_/)

    const fetched = await call('GET', `/v2/nodes/${node.id}`)
    expect(fetched.status).toBe(200)
    const view = await fetched.json()
    expect(NodeView.parse(view).name).toBe(name)
    expect(view).not.toHaveProperty('token')

    const listed = await call('GET', '/v2/nodes')
    const { nodes } = NodeList.parse(await listed.json())
    expect(nodes.map((n) => n.id)).toContain(node.id)
  })

  it('refuses a second node with the same name with 409', async () => {
    const name = uniqueName('dup')
    expect((await call('POST', '/v2/nodes', { body: { name } })).status).toBe(201)
    const again = await call('POST', '/v2/nodes', { body: { name } })
    expect(again.status).toBe(409)
    expect(NativeErrorBody.parse(await again.json()).error.code).toBe('conflict')
  })

  it('answers 400 naming the field when the body is wrong', async () => {
    const response = await call('POST', '/v2/nodes', { body: { name: 42 } })
    expect(response.status).toBe(400)
    const body = NativeErrorBody.parse(await response.json())
    expect(body.error.code).toBe('invalid_request')
    expect(body.error.message).toContain('name')
  })

  it('answers 401 without a credential and 404 for an unknown node', async () => {
    expect((await call('GET', '/v2/nodes', { token: null })).status).toBe(401)
    expect((await call('GET', '/v2/nodes', { token: 'not-the-admin-token-at-all' })).status).toBe(401)
    const missing = await call('GET', '/v2/nodes/node_doesnotexist')
    expect(missing.status).toBe(404)
  })

  it('revokes a node so that its status reads revoked', async () => {
    const created = CreateNodeResponse.parse(await (await call('POST', '/v2/nodes', { body: { name: uniqueName('revoke') } })).json())
    const revoked = await call('DELETE', `/v2/nodes/${created.id}`)
    expect(revoked.status).toBe(200)
    expect(NodeView.parse(await revoked.json()).status).toBe('revoked')
  })
})
