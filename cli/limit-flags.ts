import type { Command } from 'commander'
import { z } from 'zod'
import { BudgetPeriod, KeyLimits, TokenBudget as TokenBudgetSetting } from '../protocol/index.ts'
import type { TokenBudget } from '../protocol/index.ts'
import { CliError, EXIT_USAGE } from './admin-client.ts'
import { camel } from './cli-context.ts'

/**
 * What a limit flag asks for: a value, `none` (no limit, whatever the pool says) or `default`
 * (drop the key's own value so the pool's default applies). Wrapped in an object because
 * commander turns a parser's `null` into `""`.
 */
type LimitSetting<T> = { set: T | null } | { unset: true }
/** What a parsed limit flag holds, as read back from commander's untyped options. */
const ParsedSetting = z.union([z.object({ set: z.unknown() }), z.object({ unset: z.literal(true) })]).optional()

/** The four `KeyLimits` fields, their flag names and help. */
const LIMIT_FLAGS = [
  ['requests-per-minute', 'requests_per_minute', 'requests a minute'],
  ['tokens-per-minute', 'tokens_per_minute', 'prompt plus completion tokens a minute'],
  ['max-concurrent', 'max_concurrent', 'tasks at once'],
] as const

function keyword<T>(value: string, allowDefault: boolean): LimitSetting<T> | null {
  if (value === 'none') return { set: null }
  if (allowDefault && value === 'default') return { unset: true }
  return null
}

function count(flag: string, allowDefault: boolean) {
  return (value: string): LimitSetting<number> => {
    const word = keyword<number>(value, allowDefault)
    if (word) return word
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1)
      throw new CliError(`${flag}: expected a positive integer or none${allowDefault ? ' or default' : ''}, got "${value}"`, EXIT_USAGE)
    return { set: n }
  }
}

function budget(flag: string, allowDefault: boolean) {
  return (value: string): LimitSetting<TokenBudget> => {
    const word = keyword<TokenBudget>(value, allowDefault)
    if (word) return word
    const [tokens, period] = value.split('/')
    const n = Number(tokens)
    const parsedPeriod = BudgetPeriod.safeParse(period)
    if (!Number.isInteger(n) || n < 1 || !parsedPeriod.success) {
      throw new CliError(
        `${flag}: expected TOKENS/PERIOD (PERIOD one of ${BudgetPeriod.options.join(', ')}, e.g. 1000000/month) or none${allowDefault ? ' or default' : ''}, got "${value}"`,
        EXIT_USAGE,
      )
    }
    return { set: { tokens: n, period: parsedPeriod.data } }
  }
}

/**
 * Adds `--<prefix>requests-per-minute`, `--<prefix>tokens-per-minute`, `--<prefix>max-concurrent`
 * and `--<prefix>token-budget` to `command`; `allowDefault` also takes `default` (fall back to the pool).
 */
export function addLimitFlags(command: Command, { prefix, allowDefault, subject }: { prefix: string; allowDefault: boolean; subject: string }): void {
  const words = allowDefault ? "none (no limit) or default (the pool's)" : 'none (no limit)'
  for (const [flag, , help] of LIMIT_FLAGS)
    command.option(`--${prefix}${flag} <n>`, `${subject}: ${help}; or ${words}`, count(`--${prefix}${flag}`, allowDefault))
  command.option(
    `--${prefix}token-budget <tokens/period>`,
    `${subject}: tokens per ${BudgetPeriod.options.join('|')}, e.g. 1000000/month; or ${words}`,
    budget(`--${prefix}token-budget`, allowDefault),
  )
}

/**
 * The limits after the flags `addLimitFlags` added are applied to `current`, or null when no such
 * flag was given. A flag's value replaces the field; `default` removes it.
 */
export function limitsFromFlags(options: Record<string, unknown>, prefix: string, current: KeyLimits = {}): KeyLimits | null {
  const next: Record<string, unknown> = { ...current }
  let changed = false
  for (const flag of [...LIMIT_FLAGS.map(([name]) => name), 'token-budget']) {
    const setting = ParsedSetting.parse(options[camel(`${prefix}${flag}`)])
    if (setting === undefined) continue
    changed = true
    const field = flag.replaceAll('-', '_')
    if ('unset' in setting) delete next[field]
    else next[field] = setting.set
  }
  return changed ? KeyLimits.parse(next) : null
}

/** `requests_per_minute=60,token_budget=1000000/month` in the schema's field order, or `-` when none is set. */
export function limitsText(limits: KeyLimits | undefined): string {
  const fields: Record<string, unknown> = { ...limits }
  const parts = Object.keys(KeyLimits.shape).flatMap((field) => {
    const value = fields[field]
    if (value === undefined) return []
    const budget = TokenBudgetSetting.safeParse(value)
    return [`${field}=${value === null ? 'none' : budget.success ? `${budget.data.tokens}/${budget.data.period}` : String(value)}`]
  })
  return parts.length === 0 ? '-' : parts.join(',')
}
