/**
 * What `validate` and `doctor` found, one check each: a verdict, what was checked, what was seen
 * and, for anything not ok, the fix.
 */
export type Verdict = 'ok' | 'fail' | 'skip'

export interface Finding {
  verdict: Verdict
  /** What was checked: `config`, `token file`, `engine`, `model`, `state dir`, `gpus`, `control plane`, … */
  check: string
  /** The config field the finding is about (`pools[0].model`), when there is one. */
  field?: string
  message: string
  /** What to do about it; every `fail` has one. */
  fix?: string
}

export const failed = (findings: readonly Finding[]) => findings.filter((f) => f.verdict === 'fail')

const LABEL = { ok: 'ok', fail: 'FAIL', skip: 'skip' } as const satisfies Record<Verdict, string>
const LABEL_WIDTH = 6
const CHECK_WIDTH = 15

/**
 * One finding as `doctor` prints it, the fix on its own line below:
 * `FAIL  model          pools[0].model: /srv/m.gguf does not exist` / `      fix: …`.
 */
export function renderFinding(finding: Finding): string {
  const where = finding.field ? `${finding.field}: ` : ''
  const line = `${LABEL[finding.verdict].padEnd(LABEL_WIDTH)}${finding.check.padEnd(CHECK_WIDTH)}${where}${finding.message}`
  return finding.fix ? `${line}\n${' '.repeat(LABEL_WIDTH)}fix: ${finding.fix}` : line
}

/** One problem as `validate` prints it, in the config error style: `agent.yaml: pools[0].model: … (fix: …)`. */
export function renderProblem(file: string, finding: Finding): string {
  const where = finding.field ? `${finding.field}: ` : ''
  return `${file}: ${where}${finding.message}${finding.fix ? `; fix: ${finding.fix}` : ''}`
}
