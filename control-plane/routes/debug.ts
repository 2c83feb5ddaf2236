import { Hono } from 'hono'
import { costCounts } from '../runtime/cost-counts.ts'
import type { AppEnv } from '../runtime/env.ts'

/** `GET /v2/debug/costs`: this isolate's Durable Object entry points and storage writes. Admin only. */
export const debugRoutes = new Hono<AppEnv>().get('/costs', (c) => c.json(costCounts()))
