import { isAllowedSourceUrl } from '../config/sources.ts'
import { ProvisionError } from './provision-error.ts'

/** More redirects than this in a row is a loop. */
export const MAX_REDIRECTS = 10
/** A HEAD or the start of a GET that takes longer than this fails (a stalled body is the download's concern). */
export const SOURCE_RESPONSE_TIMEOUT_MS = 30_000

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
export async function fetchSource(request: SourceRequest): Promise<SourceResponse> {
  const tokenHost = new URL(request.url).host
  let url = request.url
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const target = new URL(url)
    if (!isAllowedSourceUrl(target)) throw new ProvisionError('source_unreachable', `refusing ${target.protocol}//${target.host}: sources must use https (plain http only to loopback)`)
    const headers: Record<string, string> = { ...request.headers }
    if (request.token && target.host === tokenHost) headers.authorization = `Bearer ${request.token}`
    const signal = AbortSignal.any([AbortSignal.timeout(SOURCE_RESPONSE_TIMEOUT_MS), ...(request.signal ? [request.signal] : [])])
    let response: Response
    try {
      response = await fetch(url, { method: request.method, headers, redirect: 'manual', signal })
    } catch (error) {
      if (request.signal?.aborted) throw new ProvisionError('interrupted', 'the download was interrupted', { cause: error })
      const detail = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
      throw new ProvisionError('source_unreachable', `cannot reach ${target.origin}: ${detail}`, { cause: error })
    }
    const location = response.headers.get('location')
    if (!isRedirect(response.status) || location === null) return { response, url }
    if (request.stopAtRedirectWith !== undefined && response.headers.has(request.stopAtRedirectWith)) return { response, url }
    await response.body?.cancel()
    url = new URL(location, url).toString()
  }
  throw new ProvisionError('source_unreachable', `more than ${MAX_REDIRECTS} redirects from ${request.url}`)
}

/** A clear error for a status that is not a success, naming the URL without its query (signed CDN links). */
export function statusError(status: number, url: string, what: string): ProvisionError {
  const shown = url.split('?')[0] ?? url
  if (status === 401 || status === 403) {
    return new ProvisionError('source_unauthorized', `${what}: HTTP ${status} from ${shown} (a gated or private repository needs hf_token_file with a token that may read it)`)
  }
  if (status === 404) return new ProvisionError('source_not_found', `${what}: HTTP 404 from ${shown} (check the repository, revision and file name)`)
  return new ProvisionError('source_unreachable', `${what}: HTTP ${status} from ${shown}`)
}
