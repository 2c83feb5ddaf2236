import type { z } from 'zod'
import { formatIssuePath } from '../../protocol/index.ts'

/** One thing wrong with a config file; `path` is null for problems with the file as a whole. */
export interface ConfigProblem {
  path: string | null
  message: string
}

/**
 * A config file that cannot be used. The message lists every problem, one per line:
 * `agent.json: pools[1].port: expected an integer 1–65535 or "auto", got "80a" (string)`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly file: string
  readonly problems: readonly ConfigProblem[]

  constructor(file: string, problems: readonly ConfigProblem[], options: { cause?: unknown } = {}) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'), options)
    this.file = file
    this.problems = problems
  }
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  return problem.path === null ? `${file}: ${problem.message}` : `${file}: ${problem.path}: ${problem.message}`
}

/** `"80a" (string)`, `1.5 (number)`, `nothing (the field is missing)`: what a field held. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)'
  if (value === null) return 'null'
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value
    return `${JSON.stringify(shown)} (string)`
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `${String(value)} (${typeof value})`
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === 'object') return 'a mapping'
  return typeof value
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = Reflect.get(value, key)
  }
  return value
}

function bound(kind: 'min' | 'max', origin: string, limit: number | bigint, inclusive: boolean): string {
  const n = Number(limit)
  if (origin === 'string') {
    if (kind === 'min' && n === 1) return 'expected a non-empty string'
    return `expected ${kind === 'min' ? 'at least' : 'at most'} ${n} characters`
  }
  if (origin === 'array') return `expected ${kind === 'min' ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}`
  const op = kind === 'min' ? (inclusive ? '≥' : '>') : inclusive ? '≤' : '<'
  return `expected a number ${op} ${n}`
}

/** Edit distance, for "did you mean" on misspelled fields. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length] ?? 0
}

function suggest(key: string, known: readonly string[]): string | null {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase()
  const candidates = [snake, `${snake}_ms`]
  for (const candidate of candidates) if (known.includes(candidate)) return candidate
  let best: string | null = null
  let bestDistance = 3
  for (const name of known) {
    const d = distance(snake, name)
    if (d < bestDistance) [best, bestDistance] = [name, d]
  }
  return best
}

export interface DescribeIssueOptions {
  /** The parsed file, to show what a wrong field held. */
  input: unknown
  /** Field names valid at a path, for "did you mean". */
  knownKeys: (path: readonly PropertyKey[]) => readonly string[]
  /** Prepended to every issue path (a pool validated on its own sits under `pools[i]`). */
  prefix?: readonly PropertyKey[]
}

/** Turns one zod issue into problems that say expected what, got what. */
export function describeIssue(issue: z.core.$ZodIssue, options: DescribeIssueOptions): ConfigProblem[] {
  const fullPath = [...(options.prefix ?? []), ...issue.path]
  const path = formatIssuePath(fullPath)
  const got = `, got ${describeValue(valueAt(options.input, fullPath))}`
  // A message written for the schema in this style beats the generic one.
  if (issue.code !== 'unrecognized_keys' && issue.message.startsWith('expected ')) {
    return [{ path, message: `${issue.message}${got}` }]
  }
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const hint = suggest(key, options.knownKeys(fullPath))
        return {
          path: formatIssuePath([...fullPath, key]),
          message: hint ? `unknown field; did you mean "${hint}"?` : 'unknown field',
        }
      })
    case 'invalid_type': {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected
      return [{ path, message: `expected ${expected}${got}` }]
    }
    case 'too_small':
      return [{ path, message: `${bound('min', issue.origin, issue.minimum, issue.inclusive ?? true)}${got}` }]
    case 'too_big':
      return [{ path, message: `${bound('max', issue.origin, issue.maximum, issue.inclusive ?? true)}${got}` }]
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v))
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`
      return [{ path, message: `expected ${expected}${got}` }]
    }
    case 'invalid_format':
      return [{ path, message: `expected ${issue.message}${got}` }]
    case 'invalid_union': {
      if ('options' in issue && Array.isArray(issue.options) && issue.options.length > 0) {
        const options = issue.options.map((o: unknown) => JSON.stringify(o)).join(', ')
        return [{ path, message: `expected one of ${options}${got}` }]
      }
      return [{ path, message: `${issue.message}${got}` }]
    }
    default:
      return [{ path, message: issue.message }]
  }
}
