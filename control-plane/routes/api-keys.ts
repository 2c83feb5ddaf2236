import { Hono } from 'hono'
import { CreateApiKeyRequest, LlorchError, PatchApiKeyRequest } from '../../protocol/index.ts'
import type { ApiKeyList } from '../../protocol/index.ts'
import type { ApiKeyCache } from '../auth/api-key-cache.ts'
import { issueCredential } from '../auth/credentials.ts'
import type { AppEnv } from '../runtime/env.ts'
import { logEvent } from '../runtime/log.ts'
import { readJson } from '../middleware/validate-json.ts'
import { findApiKey, insertApiKey, listApiKeys, revokeApiKey, setApiKeyLimits } from '../registry/api-keys.ts'
import { apiKeyView } from './views.ts'

/** `/v2/api-keys`: issue, list, limit and revoke client keys. Admin only. */
export function apiKeyRoutes(cache: ApiKeyCache) {
  return new Hono<AppEnv>()
    .post('/', async (c) => {
      const body = await readJson(c, CreateApiKeyRequest)
      const credential = await issueCredential('api_key')
      const row = await insertApiKey(c.var.registry(), {
        id: credential.id,
        name: body.name,
        keyHash: credential.hash,
        prefix: credential.prefix,
        scopes: body.scopes,
        limits: body.limits,
      })
      await c.env.API_KEYS.getByName(row.id).put({ id: row.id, hash: row.keyHash, scopes: row.scopes, limits: row.limits })
      logEvent('api_key.created', { key: row.id, scopes: row.scopes })
      return c.json({ ...apiKeyView(row), key: credential.secret }, 201)
    })
    .get('/', async (c) => {
      const list: ApiKeyList = { api_keys: (await listApiKeys(c.var.registry())).map(apiKeyView) }
      return c.json(list)
    })
    .patch('/:id', async (c) => {
      const id = c.req.param('id')
      const { limits } = await readJson(c, PatchApiKeyRequest)
      const row = await setApiKeyLimits(c.var.registry(), id, limits)
      if (!row) throw new LlorchError('not_found', `no API key with id "${id}"`)
      await c.env.API_KEYS.getByName(id).setLimits(limits)
      cache.forget(id)
      logEvent('api_key.limits_changed', { key: id, limits })
      return c.json(apiKeyView(row))
    })
    .delete('/:id', async (c) => {
      const id = c.req.param('id')
      const db = c.var.registry()
      if (!(await findApiKey(db, id))) throw new LlorchError('not_found', `no API key with id "${id}"`)
      await revokeApiKey(db, id, new Date())
      await c.env.API_KEYS.getByName(id).revoke()
      cache.forget(id)
      logEvent('api_key.revoked', { key: id })
      const row = await findApiKey(db, id)
      if (!row) throw new LlorchError('not_found', `no API key with id "${id}"`)
      return c.json(apiKeyView(row))
    })
}
