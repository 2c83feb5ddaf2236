import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { describeIssues } from '../../protocol/describe-issues.ts'
import { bearerTokenCheck } from './bearer-auth.ts'
import type { BusyRetryOptions } from './busy-retry.ts'
import { HTTP_STATUS, type HttpErrorCode } from './errors.ts'
import { PipelineRequestBody, type PipelineResponseBody } from './hrana-schema.ts'
import type { Log } from './log.ts'
import { runPipeline } from './pipeline.ts'
import type { StreamRegistry } from './streams.ts'

/** Large enough for blobs in the registry, small enough that one request cannot exhaust memory. */
export const MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024

const PIPELINE_PATHS = new Set(['/v2/pipeline', '/v3/pipeline'])
const VERSION_PATHS = new Set(['/v2', '/v3'])

export interface HranaHandlerOptions {
  registry: StreamRegistry
  authToken?: string | undefined
  log: Log
  busyRetry: BusyRetryOptions
}

/**
 * Routes Hrana over HTTP with JSON bodies. `/v3-protobuf*` falls through to 404 on purpose:
 * @libsql/client probes it first and then uses `/v2` JSON.
 */
export function createHranaHandler(options: HranaHandlerOptions): RequestListener {
  const { registry, log, busyRetry } = options
  const checkToken = options.authToken === undefined ? undefined : bearerTokenCheck(options.authToken)
  /** Served since start, for `GET /stats`: how many round trips clients made, and how many statements. */
  const stats = { pipelines: 0, requests: 0 }

  async function handlePipeline(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (checkToken && !checkToken(req.headers.authorization)) {
      req.resume()
      return sendError(res, 'UNAUTHORIZED', 'Authentication failed: send the server token as "Authorization: Bearer <token>"')
    }
    const text = await readBody(req)
    if (text === undefined) {
      return sendError(res, 'BODY_TOO_LARGE', `The request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes`)
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return sendError(res, 'BODY_INVALID', `The request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`)
    }
    const parsed = PipelineRequestBody.safeParse(json)
    if (!parsed.success) {
      return sendError(res, 'BODY_INVALID', `The pipeline request body is not valid: ${describeIssues(parsed.error.issues)}`)
    }
    stats.pipelines += 1
    stats.requests += parsed.data.requests.length
    const acquired = registry.acquire(parsed.data.baton)
    if (!acquired.ok) return sendError(res, acquired.code, acquired.message)
    const { stream } = acquired
    let body: PipelineResponseBody
    try {
      const results = await runPipeline(stream, parsed.data.requests, busyRetry)
      body = { baton: registry.release(stream), base_url: null, results }
    } catch (error) {
      registry.discard(stream)
      throw error
    }
    sendJson(res, 200, body)
  }

  return function handleHranaRequest(req, res) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/'
    const method = req.method ?? 'GET'
    if (method === 'POST' && PIPELINE_PATHS.has(path)) {
      handlePipeline(req, res).catch((error: unknown) => {
        log('libsql.internal_error', { path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
        if (!res.headersSent) sendError(res, 'INTERNAL_ERROR', 'Internal server error')
        else res.destroy()
      })
      return
    }
    if ((method === 'GET' || method === 'HEAD') && VERSION_PATHS.has(path)) {
      return sendText(res, 200, `Hello, this is HTTP API ${path.slice(1)} (Hrana over HTTP)`)
    }
    if ((method === 'GET' || method === 'HEAD') && path === '/health') return sendText(res, 200, 'ok')
    if (method === 'GET' && path === '/stats') return sendJson(res, 200, stats)
    req.resume()
    sendError(res, 'NOT_FOUND', `No route for ${method} ${path}; this server answers POST /v2/pipeline and POST /v3/pipeline`)
  }
}

/** The body as text, or undefined when it passes MAX_REQUEST_BODY_BYTES (the rest is drained). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_REQUEST_BODY_BYTES) chunks.push(chunk)
      else chunks.length = 0
    })
    req.on('end', () => resolve(size <= MAX_REQUEST_BODY_BYTES ? Buffer.concat(chunks).toString('utf8') : undefined))
    req.on('error', reject)
  })
}

/** Hrana's error shape; @libsql/client reads `message` and `code` only with exactly this content type. */
function sendError(res: ServerResponse, code: HttpErrorCode, message: string): void {
  sendJson(res, HTTP_STATUS[code], { message, code })
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
