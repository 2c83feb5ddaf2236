import { hranaError } from './errors.ts'
import type { HranaError, HranaStmt } from './hrana-schema.ts'
import { decodeValue, type SqlValue } from './values.ts'

export type ArgsResult = { ok: true; values: SqlValue[] } | { ok: false; error: HranaError }

/**
 * Turns a statement's `args` or `named_args` into one value per parameter index, so the engine
 * always binds positionally. A named argument matches with or without its prefix (`:id` or `id`),
 * as in sqld; unmatched names are ignored and unbound parameters are NULL.
 */
export function bindArgs(params: readonly (string | null)[], stmt: Pick<HranaStmt, 'args' | 'named_args'>): ArgsResult {
  if (stmt.args.length > 0 && stmt.named_args.length > 0) {
    return { ok: false, error: hranaError('ARGS_BOTH_POSITIONAL_AND_NAMED', 'Specifying both positional and named arguments is not supported') }
  }
  if (stmt.args.length > params.length) {
    return {
      ok: false,
      error: hranaError(
        'ARGS_INVALID',
        `Arguments do not match SQL parameters: the statement has ${params.length} parameters, got ${stmt.args.length} arguments`,
      ),
    }
  }
  if (stmt.named_args.length === 0) {
    return { ok: true, values: params.map((_, i) => (i < stmt.args.length ? decodeArg(stmt.args, i) : null)) }
  }
  const named = new Map(stmt.named_args.map((arg) => [arg.name, arg.value]))
  return {
    ok: true,
    values: params.map((name) => {
      if (name === null) return null
      const value = named.get(name) ?? named.get(name.slice(1))
      return value === undefined ? null : decodeValue(value)
    }),
  }
}

function decodeArg(args: HranaStmt['args'], i: number): SqlValue {
  const arg = args[i]
  return arg === undefined ? null : decodeValue(arg)
}
