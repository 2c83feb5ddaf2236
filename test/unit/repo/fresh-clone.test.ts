import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'

const ROOT = path.resolve(import.meta.dirname, '../../..')
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const LockFile = z.object({ packages: z.record(z.string(), z.object({ optionalDependencies: z.record(z.string(), z.string()).optional() })) })
const PackageJson = z.object({ scripts: z.record(z.string(), z.string()) })
/** Where a path in the README has to be to be one of this repository's. */
const TOP_LEVEL = /^(control-plane|node-agent|protocol|db|migrations|scripts|test|docs|\.ci)\//

/** Where npm would find `name` from the package installed at `at`: its own node_modules, then each parent's. */
function resolves(packages: Record<string, unknown>, at: string, name: string): boolean {
  for (let base = at; ;) {
    if (`${base ? `${base}/` : ''}node_modules/${name}` in packages) return true
    if (!base) return false
    const parent = base.lastIndexOf('/node_modules/')
    base = parent < 0 ? '' : base.slice(0, parent)
  }
}

describe('a fresh clone', () => {
  it('has a lockfile that records every optional platform package, so npm install leaves it unchanged', () => {
    const { packages } = LockFile.parse(JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')))
    const missing = Object.entries(packages).flatMap(([at, entry]) =>
      Object.keys(entry.optionalDependencies ?? {})
        .filter((name) => !resolves(packages, at, name))
        .map((name) => `${at} -> ${name}`),
    )
    expect(missing).toEqual([])
  })

  it('has a README that points only inside the repository, at paths and npm scripts that exist', () => {
    expect(readme).not.toMatch(/\]\(\.\.\/|`\.\.\/|shared\/SPEC\.md/)
    const links = [...readme.matchAll(/\]\(([^)#:\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1] ?? '')
    const quoted = [...readme.matchAll(/`([^`\s]+)`/g)].map((m) => m[1] ?? '').filter((p) => TOP_LEVEL.test(p) && !/[<…*{]/.test(p))
    expect(links.length + quoted.length).toBeGreaterThan(10)
    for (const file of [...links, ...quoted]) expect(existsSync(path.join(ROOT, file)), file).toBe(true)
    const { scripts } = PackageJson.parse(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')))
    for (const [, script] of readme.matchAll(/npm run (?:--silent )?([a-z][a-z:-]*)/g)) expect(Object.keys(scripts), `npm run ${script}`).toContain(script)
  })
})
