import { execa } from 'execa'
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

const PROJECT_ROOT = path.resolve(import.meta.dirname, '../../..')
const MIGRATIONS = path.join(PROJECT_ROOT, 'migrations')
const SCHEMA = path.join(PROJECT_ROOT, 'db/schema.ts')
const DRIZZLE_KIT = path.join(PROJECT_ROOT, 'node_modules/drizzle-kit/bin.cjs')
const NOTHING_TO_GENERATE = 'No schema changes, nothing to migrate'
const FIX = 'db/schema.ts and migrations/ disagree: run `npm run db:generate` and commit migrations/ (the new SQL file and meta/)'

interface Generated {
  /** Files under the output folder that were not in migrations/ before, relative to it. */
  newFiles: string[]
  output: string
}

/** Every file under `dir`, relative to it, sorted. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort()
}

/**
 * Runs `drizzle-kit generate` for `schema` into `out`, a copy of migrations/. drizzle-kit takes
 * `--out` relative to its cwd (it prefixes "./"), and it exits 0 even when it fails, so callers
 * judge by the files it wrote and what it printed.
 */
async function generate({ schema, out }: { schema: string; out: string }): Promise<Generated> {
  const before = new Set(listFiles(out))
  const result = await execa(
    process.execPath,
    [DRIZZLE_KIT, 'generate', '--dialect', 'turso', '--schema', path.relative(PROJECT_ROOT, schema), '--out', path.relative(PROJECT_ROOT, out)],
    {
      cwd: PROJECT_ROOT,
      reject: false,
      all: true,
      timeout: 20_000,
    },
  )
  const output = `exit ${String(result.exitCode)}\n${result.all}`
  return { newFiles: listFiles(out).filter((file) => !before.has(file)), output }
}

/**
 * Why `generated` shows drift, telling the developer what to do, or undefined when drizzle-kit
 * wrote nothing and said so.
 */
function driftReport({ newFiles, output }: Generated): string | undefined {
  if (newFiles.length > 0) return `${FIX}\ndrizzle-kit generate would add ${newFiles.join(', ')}\n${output}`
  if (!output.includes(NOTHING_TO_GENERATE)) return `${FIX}\ndrizzle-kit generate did not report "${NOTHING_TO_GENERATE}"\n${output}`
  return undefined
}

describe('generated migrations', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  /** A temporary folder holding `migrations/`, a copy of the project's; removed after the test. */
  function scratch(): { dir: string; out: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'llorch-drift-'))
    dirs.push(dir)
    const out = path.join(dir, 'migrations')
    cpSync(MIGRATIONS, out, { recursive: true })
    return { dir, out }
  }

  it('match db/schema.ts, so drizzle-kit generate has nothing to write', async () => {
    const { out } = scratch()
    const report = driftReport(await generate({ schema: SCHEMA, out }))
    if (report) expect.fail(report)
    expect(readFileSync(path.join(out, 'meta/_journal.json'), 'utf8')).toBe(readFileSync(path.join(MIGRATIONS, 'meta/_journal.json'), 'utf8'))
  })

  it('fails when the schema has a column the migrations lack', async () => {
    const { dir, out } = scratch()
    // The copy lives outside the project: it finds packages through a node_modules link beside
    // it, and its relative imports are pointed back at db/.
    symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
    const schema = path.join(dir, 'schema.ts')
    const original = readFileSync(SCHEMA, 'utf8').replace(
      /from '(\.{1,2}\/[^']+)'/g,
      (_, relative: string) => `from '${path.join(path.dirname(SCHEMA), relative)}'`,
    )
    const drifted = original.replace("id: text('id').primaryKey(),", "id: text('id').primaryKey(),\n    driftProbe: text('drift_probe'),")
    expect(drifted, "expected db/schema.ts to have a `id: text('id').primaryKey(),` column to add a probe after").not.toBe(original)
    writeFileSync(schema, drifted)

    const generated = await generate({ schema, out })
    expect(driftReport(generated)).toContain('run `npm run db:generate` and commit migrations/')
    const { newFiles, output } = generated
    const sql = newFiles.filter((file) => file.endsWith('.sql'))
    expect(sql, output).toHaveLength(1)
    expect(readFileSync(path.join(out, sql[0] ?? ''), 'utf8')).toMatch(/ALTER TABLE `\w+` ADD `drift_probe` text/)
  })
})
