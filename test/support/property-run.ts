import fc from 'fast-check'

/** A counterexample can be megabytes of text; the seed and path come first in the report. */
const MAX_REPORT_CHARS = 4_000

/** What one property run did, for the log line and the totals a test reports. */
export interface PropertyRun {
  name: string
  seed: number
  runs: number
  ms: number
}

/** `FUZZ_SEED=123` replays every property of a run with the same inputs; empty or unset means a fresh seed. */
export function seedFrom(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const seed = Number(raw)
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${raw}"`)
  return seed
}

/**
 * Runs a property and logs one line with its seed and input count. A failure throws fast-check's
 * report (seed, path, shrunk counterexample, the error) and the command that replays it.
 */
export async function runProperty<Ts>(
  name: string,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  { numRuns, seed }: { numRuns: number; seed: number | undefined },
): Promise<PropertyRun> {
  const startedAt = performance.now()
  const details = await fc.check(property, { numRuns, ...(seed !== undefined ? { seed } : {}) })
  const run: PropertyRun = { name, seed: details.seed, runs: details.numRuns, ms: Math.round(performance.now() - startedAt) }
  console.log(JSON.stringify({ event: 'fuzz.property', ...run, failed: details.failed }))
  if (details.failed || details.interrupted) {
    const replay = `FUZZ_SEED=${details.seed} npx vitest run <this file>  (fc.check params: { seed: ${details.seed}, path: "${details.counterexamplePath ?? ''}", endOnFailure: true })`
    const report = fc.defaultReportMessage(details) ?? 'interrupted'
    const clipped = report.length > MAX_REPORT_CHARS ? `${report.slice(0, MAX_REPORT_CHARS)}… (clipped)` : report
    throw new Error(`property "${name}" failed\n${clipped}\nreplay: ${replay}`, { cause: details.errorInstance })
  }
  return run
}

/** One line with a suite's total input count, for the report of a run. */
export function logTotal(suite: string, runs: readonly PropertyRun[]): void {
  console.log(JSON.stringify({ event: 'fuzz.total', suite, properties: runs.length, inputs: runs.reduce((sum, r) => sum + r.runs, 0) }))
}
