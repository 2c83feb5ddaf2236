import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { requestId } from 'hono/request-id'
import { LlorchError } from '../protocol/index.ts'
import { ApiKeyCache } from './auth/api-key-cache.ts'
import type { AppEnv } from './runtime/env.ts'
import { errorResponse, renderError } from './middleware/error-response.ts'
import { accessLog } from './middleware/access-log.ts'
import { requireScope } from './middleware/bearer-auth.ts'
import { registry } from './middleware/registry.ts'
import { adminBatchRoutes } from './routes/admin-batches.ts'
import { agentConnectRoutes } from './routes/agent-connect.ts'
import { apiKeyRoutes } from './routes/api-keys.ts'
import { batchRoutes } from './routes/batches.ts'
import { debugRoutes } from './routes/debug.ts'
import { dashboardRoutes } from './routes/dashboard.ts'
import { embeddingRoutes } from './routes/embeddings.ts'
import { fileRoutes } from './routes/files.ts'
import { generationRoutes } from './routes/generation.ts'
import { healthRoutes } from './routes/health.ts'
import { metricsRoutes } from './routes/metrics.ts'
import { modelRoutes } from './routes/models.ts'
import { nodeRoutes } from './routes/nodes.ts'
import { openApiRoutes } from './routes/openapi.ts'
import { poolRoutes } from './routes/pools.ts'
import { taskRoutes } from './routes/tasks.ts'
import { unmatchedRoute } from './routes/unmatched-route.ts'
import { usageRoutes } from './routes/usage.ts'

/** Largest request body accepted; generation requests with long prompts fit well inside. File uploads have their own limit. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024

/** The one route whose body may be larger: a batch input file, limited by `routes/files.ts`. */
const isUpload = (method: string, path: string) => method === 'POST' && path === '/v1/files'

export function createApp() {
  const apiKeys = new ApiKeyCache()
  const app = new Hono<AppEnv>()
  app.use(requestId())
  app.use(accessLog())
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => errorResponse(c, new LlorchError('payload_too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`)),
  })
  app.use((c, next) => (isUpload(c.req.method, c.req.path) ? next() : limitBody(c, next)))
  app.route('/', healthRoutes)
  app.route('/', dashboardRoutes)
  app.route('/', openApiRoutes)

  app.use('/v1/*', registry())
  app.use('/v2/*', registry())
  app.use('/metrics', registry())
  app.route('/', agentConnectRoutes)

  const admin = requireScope('admin', apiKeys)
  app.use('/v2/nodes/*', admin)
  app.use('/v2/pools/*', admin)
  app.use('/v2/api-keys/*', admin)
  app.use('/v2/debug/*', admin)
  app.use('/v2/usage', admin)
  app.use('/v2/usage/self', requireScope(['inference', 'admin'], apiKeys))
  app.use('/v2/metrics', admin)
  app.use('/v2/batches', admin)
  app.use('/v2/batches/*', admin)
  app.use('/metrics', admin)
  app.route('/v2/nodes', nodeRoutes)
  app.route('/v2/pools', poolRoutes)
  app.route('/v2/api-keys', apiKeyRoutes(apiKeys))
  app.route('/v2/debug', debugRoutes)
  app.route('/v2/usage', usageRoutes)
  app.route('/v2/batches', adminBatchRoutes)
  app.route('/', metricsRoutes)

  const inference = requireScope('inference', apiKeys)
  app.use('/v2/tasks', inference)
  app.use('/v2/tasks/*', inference)
  app.route('/v2/tasks', taskRoutes)

  app.use('/v1/*', inference)
  app.route('/', modelRoutes)
  app.route('/', generationRoutes)
  app.route('/', embeddingRoutes)
  app.route('/', fileRoutes)
  app.route('/', batchRoutes)

  app.notFound(unmatchedRoute)
  app.onError(renderError)
  return app
}
