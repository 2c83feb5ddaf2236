import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { CreateApiKeyResponse, NativeErrorBody, OpenAIErrorBody } from '../../protocol/index.ts'
import { connect, createNode } from './agent-socket.ts'
import { ADMIN_TOKEN, call, uniqueName } from './support.ts'

async function apiKey(scopes: string[]): Promise<string> {
  return CreateApiKeyResponse.parse(await (await call('POST', '/v2/api-keys', { body: { name: uniqueName('key'), scopes } })).json()).key
}

async function refusal(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status)
  const body: unknown = await response.json()
  const parsed = OpenAIErrorBody.safeParse(body)
  return parsed.success ? parsed.data.error.message : NativeErrorBody.parse(body).error.message
}

const chat = (token: string) => call('POST', '/v1/chat/completions', { token, body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } })

describe('a credential of the wrong kind', () => {
  it('on /v1: the admin token and a node token are told that inference takes an API key', async () => {
    expect(await refusal(await chat(ADMIN_TOKEN), 401)).toBe(
      'the admin token is not an inference credential; create an API key with POST /v2/api-keys (scopes ["inference"]) and send that',
    )
    expect(await refusal(await call('GET', '/v1/models', { token: (await createNode()).token }), 401)).toBe(
      'a node token is not an inference credential (node tokens are valid only on /v2/agent/connect); create an API key with POST /v2/api-keys',
    )
    expect(await refusal(await chat('not-a-credential-at-all'), 401)).toContain('inference (/v1, /v2/tasks) takes an API key (llk.…)')
    expect(await refusal(await chat(await apiKey(['admin'])), 403)).toBe(
      'this API key lacks the "inference" scope; create one with scopes ["inference"] (POST /v2/api-keys)',
    )
  })

  it('on the admin API: a node token, a stranger and an inference key are told what the admin API takes', async () => {
    expect(await refusal(await call('GET', '/v2/nodes', { token: (await createNode()).token }), 401)).toContain('a node token is not an admin credential')
    expect(await refusal(await call('GET', '/v2/pools', { token: 'not-the-admin-token-0123' }), 401)).toBe(
      'invalid credential: the admin API takes the admin token or an API key (llk.…) with the "admin" scope',
    )
    expect(await refusal(await call('GET', '/v2/api-keys', { token: await apiKey(['inference']) }), 403)).toContain(
      'send the admin token or a key created with scopes ["admin"]',
    )
  })

  it('on /v2/agent/connect: the admin token and an API key are told agents need a node token', async () => {
    expect(await refusal(await connect(ADMIN_TOKEN), 401)).toBe(
      'the admin token is not a node token; agents connect with the node token that POST /v2/nodes prints',
    )
    expect(await refusal(await connect(await apiKey(['inference'])), 401)).toBe(
      'an API key is not a node token; agents connect with the node token that POST /v2/nodes prints',
    )
    expect(await refusal(await connect('lln.node_AAAAAAAAAAAA.' + 'A'.repeat(43)), 401)).toContain('unknown node token')
    const missing = await exports.default.fetch('https://llorch.test/v2/agent/connect', { headers: { Upgrade: 'websocket' } })
    expect(await refusal(missing, 401)).toContain('agents send "Authorization: Bearer <node token>"')
  })
})

describe('GET /v2/agent/connect without an upgrade', () => {
  it('answers 426 naming the node when the token is accepted, so a check does not replace a running agent', async () => {
    const node = await createNode()
    const response = await exports.default.fetch('https://llorch.test/v2/agent/connect', { headers: { Authorization: `Bearer ${node.token}` } })
    expect(response.status).toBe(426)
    expect(NativeErrorBody.parse(await response.json()).error).toEqual({
      code: 'upgrade_required',
      message: 'node token accepted; this endpoint takes a WebSocket upgrade from llorch-agent',
      retriable: false,
      details: { node_id: node.id },
    })
  })
})
