import { Hono } from 'hono'
import { LLORCH_VERSION } from '../../protocol/index.ts'
import type { AppEnv } from '../runtime/env.ts'

/** `GET /health`: liveness and version, no auth, no registry round trip. */
export const healthRoutes = new Hono<AppEnv>().get('/health', (c) => c.json({ status: 'ok', version: LLORCH_VERSION }))
