import { z } from 'zod'
import { RELATIVE_PATH } from '../config/sources.ts'
import { ProvisionError } from './provision-error.ts'
import { fetchSource, statusError } from './source-fetch.ts'

/** Where `huggingface_hub` looks when `HF_ENDPOINT` is not set. */
export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co'

export interface HubOptions {
  /** `HF_ENDPOINT`, without a trailing slash. */
  endpoint: string
  token: string | null
  signal?: AbortSignal
}

/** One file of a repository at one commit, as the resolve endpoint's HEAD describes it. */
export interface HubFile {
  repo: string
  file: string
  commit: string
  /** The blob's name in the cache: the sha256 for LFS files, the git hash otherwise. */
  etag: string
  /** The sha256 the bytes must have; null for small non-LFS files, whose etag is a git hash. */
  sha256: string | null
  size: number | null
  /** Where the bytes are: the redirect target for LFS files, the resolve URL otherwise. */
  contentUrl: string
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** `W/"abc"` or `"abc"` → `abc`. */
const unquote = (etag: string) => etag.replace(/^W\//, '').replace(/^"|"$/g, '')

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const encodedFile = file.split('/').map(encodeURIComponent).join('/')
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodedFile}`
}

/**
 * HEAD `{endpoint}/{repo}/resolve/{revision}/{file}` as `huggingface_hub` does: the commit from
 * `X-Repo-Commit`, the sha256 and size of an LFS file from `X-Linked-Etag` and `X-Linked-Size`
 * (on the redirect to the content host), else `ETag` and `Content-Length`.
 */
export async function headHubFile({ repo, revision, file, ...options }: HubOptions & { repo: string; revision: string; file: string }): Promise<HubFile> {
  const url = resolveUrl(options.endpoint, repo, revision, file)
  const what = `${repo}@${revision}: ${file}`
  const { response, url: answered } = await fetchSource({
    url,
    method: 'HEAD',
    token: options.token,
    signal: options.signal,
    stopAtRedirectWith: 'x-linked-etag',
    headers: { 'accept-encoding': 'identity' },
  })
  const redirected = response.status >= 300 && response.status < 400
  if (!response.ok && !redirected) throw statusError(response.status, answered, what)
  const headers = response.headers
  const commit = headers.get('x-repo-commit')
  const rawEtag = headers.get('x-linked-etag') ?? headers.get('etag')
  if (commit === null || rawEtag === null) {
    throw new ProvisionError(
      'source_unreachable',
      `${what}: ${answered.split('?')[0]} did not answer as the Hugging Face Hub does (no X-Repo-Commit or ETag header); check HF_ENDPOINT`,
    )
  }
  const etag = unquote(rawEtag)
  // Both become names in the cache.
  if (!/^[0-9a-f]{40}$/.test(commit) || !/^[A-Za-z0-9_-]{8,128}$/.test(etag)) {
    throw new ProvisionError('source_unreachable', `${what}: the Hub answered with a commit or ETag the agent does not use as a file name`)
  }
  const sizeHeader = headers.get('x-linked-size') ?? (redirected ? null : headers.get('content-length'))
  const location = headers.get('location')
  return {
    repo,
    file,
    commit,
    etag,
    sha256: SHA256_HEX.test(etag) ? etag : null,
    size: sizeHeader === null ? null : Number(sizeHeader),
    contentUrl: redirected && location !== null ? new URL(location, answered).toString() : answered,
  }
}

const RepoInfo = z.object({ sha: z.string().min(1), siblings: z.array(z.object({ rfilename: z.string().min(1) })) })

/** The commit a revision points to and the files of the repository there (`GET /api/models/{repo}/revision/{revision}`). */
export async function listHubSnapshot({
  repo,
  revision,
  ...options
}: HubOptions & { repo: string; revision: string }): Promise<{ commit: string; files: string[] }> {
  const url = `${options.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`
  const { response, url: answered } = await fetchSource({ url, method: 'GET', token: options.token, signal: options.signal })
  if (!response.ok) throw statusError(response.status, answered, `${repo}@${revision}`)
  const parsed = RepoInfo.safeParse(await response.json().catch(() => null))
  if (!parsed.success)
    throw new ProvisionError('source_unreachable', `${repo}@${revision}: ${url} did not answer with the repository's files; check HF_ENDPOINT`)
  const files = parsed.data.siblings.map((s) => s.rfilename)
  // Names from the network become paths in the cache.
  const odd = files.find((file) => !RELATIVE_PATH.test(file))
  if (odd !== undefined)
    throw new ProvisionError(
      'source_unreachable',
      `${repo}@${revision}: the repository lists a file named ${JSON.stringify(odd.slice(0, 200))}, which the agent does not write to disk`,
    )
  if (!/^[0-9a-f]{40}$/.test(parsed.data.sha))
    throw new ProvisionError('source_unreachable', `${repo}@${revision}: the Hub answered with a commit that is not 40 hex digits`)
  return { commit: parsed.data.sha, files }
}

const SPLIT_GGUF = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/

/** `m-00001-of-00003.gguf` → the three parts, in order; any other name → itself. */
export function splitGgufParts(file: string): string[] {
  const match = SPLIT_GGUF.exec(file)
  if (!match) return [file]
  const [, stem = '', , count = '1'] = match
  const total = Number(count)
  return Array.from({ length: total }, (_, i) => `${stem}-${String(i + 1).padStart(5, '0')}-of-${count}.gguf`)
}
