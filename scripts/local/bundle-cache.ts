import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'

/** esbuild's build metadata, as `wrangler deploy --metafile` writes it: the files the bundle was made of. */
const BundleMeta = z.looseObject({ inputs: z.record(z.string(), z.unknown()) })
/** Each source file of a bundle with its sha256, relative to the project root. */
const BundleInputs = z.object({ files: z.record(z.string(), z.string()) })

export const BUNDLE_META_FILE = 'bundle-meta.json'
const BUNDLE_INPUTS_FILE = 'bundle-inputs.json'
/** Dependencies are named by the lockfile rather than hashed file by file; the config by its own file. */
const ALWAYS_HASHED = ['package-lock.json', 'wrangler.toml']

function sha256Of(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return null
  }
}

/** Remembers what the bundle in `outDir` was built from, read from the metadata its build wrote. */
export function recordBundleInputs(outDir: string, root: string): void {
  const meta = BundleMeta.parse(JSON.parse(readFileSync(path.join(outDir, BUNDLE_META_FILE), 'utf8')))
  const sources = Object.keys(meta.inputs).filter((file) => !file.split('/').includes('node_modules'))
  const files: Record<string, string> = {}
  for (const file of [...sources, ...ALWAYS_HASHED]) {
    const hash = sha256Of(path.join(root, file))
    if (hash !== null) files[file] = hash
  }
  writeFileSync(path.join(outDir, BUNDLE_INPUTS_FILE), `${JSON.stringify({ files } satisfies z.infer<typeof BundleInputs>)}\n`)
}

/**
 * True when `bundlePath` was built from exactly the files there now. A new import changes the
 * file that imports it, so no file the bundle would take in can be missed.
 */
export function bundleUpToDate(bundlePath: string, root: string): boolean {
  const recorded = path.join(path.dirname(bundlePath), BUNDLE_INPUTS_FILE)
  if (!existsSync(bundlePath) || !existsSync(recorded)) return false
  const parsed = BundleInputs.safeParse(JSON.parse(readFileSync(recorded, 'utf8')))
  if (!parsed.success) return false
  return Object.entries(parsed.data.files).every(([file, hash]) => sha256Of(path.join(root, file)) === hash)
}
