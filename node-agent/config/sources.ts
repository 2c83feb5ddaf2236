import { z } from 'zod'

/** Hosts a source URL may use plain http with: the box itself (test servers, a local mirror). */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/** Whether `url` is https, or http to a loopback address. */
export function isAllowedSourceUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))
}

const SourceUrl = z.string().refine((value) => URL.canParse(value) && isAllowedSourceUrl(new URL(value)), {
  error: 'expected an https:// URL (plain http only to 127.0.0.1, ::1 or localhost)',
})

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 as 64 lowercase hex digits')

/** `org/repo` as the Hub names repositories. */
const RepoId = z
  .string()
  .regex(
    /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'expected a Hugging Face repository as "org/repo" (letters, digits, _ . -, no "..")',
  )

/** A path with no `..`, no empty or `.` parts, not absolute, of letters, digits and `_ . + @ = - /`. */
export const RELATIVE_PATH = /^(?!.*\.\.)(?!.*\/\/)(?!(.*\/)?\.(\/|$))[A-Za-z0-9_.+@=-][A-Za-z0-9_.+@=\/-]*(?<!\/)$/

/** A path inside a repository or archive. */
export const RelativePath = z.string().regex(RELATIVE_PATH, 'expected a relative path of letters, digits and _ . + @ = - / (no "..", no leading /)')

/** A branch, tag or commit of a Hub repository. */
const Revision = z.string().regex(/^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.\/-]{0,127}$/, 'expected a branch, tag or commit (letters, digits, _ . - /, no "..")')

/**
 * A Hugging Face source: one file (`file`; a split GGUF `-00001-of-0000N` brings its siblings)
 * or, without `file`, a whole repository snapshot (what vLLM loads).
 */
export const HfSource = z.strictObject({
  hf: RepoId,
  file: RelativePath.optional(),
  revision: Revision.default('main'),
})
export type HfSource = z.infer<typeof HfSource>

/** Any file over https, checked against its sha256. */
export const UrlSource = z.strictObject({ url: SourceUrl, sha256: Sha256 })
export type UrlSource = z.infer<typeof UrlSource>

export const ModelSource = z.union([HfSource, UrlSource], { error: 'expected {"hf": "org/repo", …} or {"url": "https://…", "sha256": "…"}' })
export type ModelSource = z.infer<typeof ModelSource>

/** A pool's `model`: a local path (or an engine's own name, like an Ollama tag), or a source to fetch. */
export const ModelField = z.union([z.string().min(1), ModelSource], {
  error: 'expected a path, {"hf": "org/repo", "file": "…"} or {"url": "https://…", "sha256": "…"}',
})

/** An engine release archive (`.tar.gz`, `.tgz`, `.zip`), fetched like a model and run from the cache. */
export const EngineArchive = z.strictObject({
  url: SourceUrl.refine((value) => /\.(tar\.gz|tgz|zip)$/.test(new URL(value).pathname), { error: 'expected a URL ending in .tar.gz, .tgz or .zip' }),
  sha256: Sha256,
  /** The program inside the archive, e.g. `build/bin/llama-server`. */
  path: RelativePath,
})
export type EngineArchive = z.infer<typeof EngineArchive>

/** A pool's `binary`: a path or a name on PATH, or a release archive to fetch. */
export const BinaryField = z.union([z.string().min(1), EngineArchive], { error: 'expected a path, a name on PATH or {"url": "…", "sha256": "…", "path": "…"}' })
