import http from 'node:http'
import type { IncomingMessage } from 'node:http'
import https from 'node:https'
import { isAllowedSourceUrl } from '../config/sources.ts'
import { ProvisionError } from './provision-error.ts'

/** More redirects than this in a row is a loop. */
export const MAX_REDIRECTS = 10
/** A source that sends no response headers this long after the request fails. */
export const SOURCE_RESPONSE_TIMEOUT_MS = 30_000
/** A body that sends no byte this long counts as a cut transfer (and is resumed). */
export const SOURCE_IDLE_TIMEOUT_MS = 60_000

export interface SourceRequest {
  url: string
  method: 'GET' | 'HEAD'
  headers?: Record<string, string>
  /** Sent as a bearer token to `url`'s host only, never to a redirect target on another host. */
  token?: string | null
  signal?: AbortSignal
  /** Stop at the first redirect that carries these headers (the Hub's LFS answer) instead of following it. */
  stopAtRedirectWith?: string
}

export interface SourceResponse {
  response: Response
  /** The URL that answered, after redirects. */
  url: string
}

const isRedirect = (status: number) => status === 301 || status === 302 || status === 303 || status === 307 || status === 308

/**
 * `fetch` that follows redirects itself: each hop must be https (or loopback http), and the token
 * goes only to the host it was given for.
 */
/** The URL of one hop, checked, with the headers it gets (the token only on its own host). */
function hop(request: SourceRequest, url: string, tokenHost: string): { target: URL; headers: Record<string, string> } {
  const target = new URL(url)
  if (!isAllowedSourceUrl(target))
    throw new ProvisionError('source_unreachable', `refusing ${target.protocol}//${target.host}: sources must use https (plain http only to loopback)`)
  const headers: Record<string, string> = { ...request.headers }
  if (request.token && target.host === tokenHost) headers.authorization = `Bearer ${request.token}`
  return { target, headers }
}

function unreachable(request: SourceRequest, target: URL, error: unknown): ProvisionError {
  if (request.signal?.aborted) return new ProvisionError('interrupted', 'the download was interrupted', { cause: error })
  const detail = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
  return new ProvisionError('source_unreachable', `cannot reach ${target.origin}: ${detail}`, { cause: error })
}

/** For HEADs and small JSON answers. */
export async function fetchSource(request: SourceRequest): Promise<SourceResponse> {
  const tokenHost = new URL(request.url).host
  let url = request.url
  for (let n = 0; n <= MAX_REDIRECTS; n++) {
    const { target, headers } = hop(request, url, tokenHost)
    const signal = AbortSignal.any([AbortSignal.timeout(SOURCE_RESPONSE_TIMEOUT_MS), ...(request.signal ? [request.signal] : [])])
    let response: Response
    try {
      response = await fetch(url, { method: request.method, headers, redirect: 'manual', signal })
    } catch (error) {
      throw unreachable(request, target, error)
    }
    const location = response.headers.get('location')
    if (!isRedirect(response.status) || location === null) return { response, url }
    if (request.stopAtRedirectWith !== undefined && response.headers.has(request.stopAtRedirectWith)) return { response, url }
    await response.body?.cancel()
    url = new URL(location, url).toString()
  }
  throw new ProvisionError('source_unreachable', `more than ${MAX_REDIRECTS} redirects from ${request.url}`)
}

export interface SourceStream {
  /** A Node stream: the body of a download, with no timeout on the whole transfer, only on silence. */
  response: IncomingMessage
  url: string
}

/**
 * A GET whose body is a Node stream (faster than a web stream for gigabytes), following redirects
 * as `fetchSource` does. A source silent for `SOURCE_IDLE_TIMEOUT_MS` ends the body with an error.
 */
export async function streamSource(request: Omit<SourceRequest, 'method' | 'stopAtRedirectWith'>): Promise<SourceStream> {
  const tokenHost = new URL(request.url).host
  let url = request.url
  for (let n = 0; n <= MAX_REDIRECTS; n++) {
    const { target, headers } = hop({ ...request, method: 'GET' }, url, tokenHost)
    const get = target.protocol === 'https:' ? https.get : http.get
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = get(target, { headers, signal: request.signal }, resolve)
      req.setTimeout(SOURCE_RESPONSE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${SOURCE_RESPONSE_TIMEOUT_MS} ms`)))
      req.once('response', (res) => {
        req.setTimeout(SOURCE_IDLE_TIMEOUT_MS, () => res.destroy(new Error(`no bytes for ${SOURCE_IDLE_TIMEOUT_MS} ms`)))
      })
      req.once('error', (error) => reject(unreachable({ ...request, method: 'GET' }, target, error)))
    })
    const location = response.headers.location
    const status = response.statusCode ?? 0
    if (!isRedirect(status) || location === undefined) return { response, url }
    response.resume()
    url = new URL(location, url).toString()
  }
  throw new ProvisionError('source_unreachable', `more than ${MAX_REDIRECTS} redirects from ${request.url}`)
}

/** A clear error for a status that is not a success, naming the URL without its query (signed CDN links). */
export function statusError(status: number, url: string, what: string): ProvisionError {
  const shown = url.split('?')[0] ?? url
  if (status === 401 || status === 403) {
    return new ProvisionError(
      'source_unauthorized',
      `${what}: HTTP ${status} from ${shown} (a gated or private repository needs hf_token_file with a token that may read it)`,
    )
  }
  if (status === 404) return new ProvisionError('source_not_found', `${what}: HTTP 404 from ${shown} (check the repository, revision and file name)`)
  return new ProvisionError('source_unreachable', `${what}: HTTP ${status} from ${shown}`)
}
