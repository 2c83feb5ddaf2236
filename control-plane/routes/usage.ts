import { Hono } from 'hono'
import { LlorchError, UsageQuery, UsageSelfQuery } from '../../protocol/index.ts'
import type { AppEnv } from '../runtime/env.ts'
import type { AuthVariables } from '../middleware/bearer-auth.ts'
import { readQuery } from '../middleware/validate-query.ts'
import { usageReport } from '../registry/usage-report.ts'

/**
 * `GET /v2/usage` (admin): requests and tokens of finished tasks, filtered by time, key and pool,
 * grouped by key, pool or day. `GET /v2/usage/self`: the same for the calling API key only.
 * Pools write usage in batches, so a task shows up here a few seconds after it ended.
 */
export const usageRoutes = new Hono<AppEnv & { Variables: AuthVariables }>()
  .get('/', async (c) => {
    const query = readQuery(c, UsageQuery)
    return c.json(await usageReport(c.var.registry(), { ...query, groupBy: query.group_by }))
  })
  .get('/self', async (c) => {
    const principal = c.var.principal
    if (principal.kind !== 'api_key')
      throw new LlorchError('invalid_request', 'the admin token is not an API key and has no usage of its own; use GET /v2/usage')
    const query = readQuery(c, UsageSelfQuery)
    return c.json(await usageReport(c.var.registry(), { ...query, key: principal.keyId, groupBy: query.group_by }))
  })
