import { Hono } from 'hono'
import { DASHBOARD_HTML } from '../dashboard/dashboard-page.ts'
import type { AppEnv } from '../runtime/env.ts'

/** The page may run only its own inline script and talk only to this origin. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** `GET /`: the dashboard. The page holds no data; it asks the admin API with the credential typed into it. */
export const dashboardRoutes = new Hono<AppEnv>().get('/', (c) =>
  c.html(DASHBOARD_HTML, 200, { 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' }),
)
