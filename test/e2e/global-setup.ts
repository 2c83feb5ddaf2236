import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { buildWorker } from '../../scripts/local/build-worker.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    workerBundlePath: string
  }
}

/** Bundles the Worker once per run, exactly as `wrangler deploy` would; each test runs it in workerd. */
export default async function setup(project: TestProject) {
  const outDir = mkdtempSync(path.join(tmpdir(), 'llorch-bundle-'))
  const { bundlePath } = await buildWorker({ outDir })
  project.provide('workerBundlePath', bundlePath)
  return () => rmSync(outDir, { recursive: true, force: true })
}
