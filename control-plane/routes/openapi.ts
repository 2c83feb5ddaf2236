import { Hono } from 'hono'
import type { AppEnv } from '../runtime/env.ts'
import { openApiDocument } from '../openapi/openapi-document.ts'

/** `GET /openapi.json`: the OpenAPI 3.1 document of every route, no auth. */
export const openApiRoutes = new Hono<AppEnv>().get('/openapi.json', (c) => c.json(openApiDocument()))
