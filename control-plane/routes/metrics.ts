import { Hono } from 'hono'
import type { AppEnv } from '../runtime/env.ts'
import { collectFleet } from '../metrics/collect-fleet.ts'
import { fleetFamilies } from '../metrics/fleet-families.ts'
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../metrics/prometheus-text.ts'

/**
 * `GET /metrics`: Prometheus text for every pool and node the registry lists, asked of their
 * Durable Objects at scrape time. `GET /v2/metrics`: the same numbers as JSON, for the dashboard
 * and `llorch top`. Admin.
 */
export const metricsRoutes = new Hono<AppEnv>()
  .get('/metrics', async (c) => {
    const fleet = await collectFleet(c.env, c.var.registry(), new Date())
    return c.body(renderPrometheus(fleetFamilies(fleet)), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' })
  })
  .get('/v2/metrics', async (c) => c.json(await collectFleet(c.env, c.var.registry(), new Date())))
