import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BUNDLE_META_FILE, bundleUpToDate, recordBundleInputs } from '../../../scripts/local/bundle-cache.ts'

const roots: string[] = []
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true })
})

/** A project with two sources, a dependency and a bundle built from them, as `wrangler deploy --metafile` describes it. */
function builtProject() {
  const root = mkdtempSync(path.join(tmpdir(), 'llorch-bundle-cache-'))
  roots.push(root)
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
    writeFileSync(path.join(root, file), text)
  }
  write('control-plane/index.ts', "import { a } from '../protocol/a.ts'\n")
  write('protocol/a.ts', 'export const a = 1\n')
  write('node_modules/hono/index.js', 'export {}\n')
  write('package-lock.json', '{"lockfileVersion":3}\n')
  write('wrangler.toml', 'name = "llorch"\n')
  const inputs = { 'control-plane/index.ts': {}, 'protocol/a.ts': {}, 'node_modules/hono/index.js': {} }
  write(`dist/${BUNDLE_META_FILE}`, JSON.stringify({ inputs, outputs: {} }))
  write('dist/index.js', '/* bundle */\n')
  recordBundleInputs(path.join(root, 'dist'), root)
  return { root, bundle: path.join(root, 'dist/index.js'), write }
}

describe("npm start's Worker bundle", () => {
  it('is kept while no source it was built from changed', () => {
    const { root, bundle, write } = builtProject()
    expect(bundleUpToDate(bundle, root)).toBe(true)
    // A file the bundle never took in changes nothing.
    write('node-agent/agent.ts', 'export {}\n')
    expect(bundleUpToDate(bundle, root)).toBe(true)
  })

  it('is built again when a source, the lockfile or wrangler.toml changed, or a source is gone', () => {
    for (const [file, change] of [
      ['protocol/a.ts', 'export const a = 2\n'],
      ['package-lock.json', '{"lockfileVersion":3,"packages":{}}\n'],
      ['wrangler.toml', 'name = "llorch"\nmain = "x"\n'],
    ] as const) {
      const { root, bundle, write } = builtProject()
      write(file, change)
      expect(bundleUpToDate(bundle, root), file).toBe(false)
    }
    const { root, bundle } = builtProject()
    rmSync(path.join(root, 'protocol/a.ts'))
    expect(bundleUpToDate(bundle, root)).toBe(false)
  })

  it('is built when there is none yet, or no record of what it was built from', () => {
    const { root, bundle } = builtProject()
    rmSync(path.join(root, 'dist/bundle-inputs.json'))
    expect(bundleUpToDate(bundle, root)).toBe(false)
    rmSync(bundle)
    expect(bundleUpToDate(bundle, root)).toBe(false)
  })
})
