/**
 * A small SQL lexer that follows SQLite's own tokenizer (tokenize.c) and statement-completeness
 * state machine (complete.c) closely enough to split a string into statements and to number its
 * parameters. The `libsql` engine exposes neither the unparsed tail of a prepared statement nor
 * parameter names, and binding an object to a statement with a bare `?` aborts the process, so
 * the server binds everything positionally using the indexes computed here.
 */

export interface ScannedStatement {
  /** The statement text without its terminating semicolon. */
  readonly sql: string
  /**
   * One entry per parameter index (entry 0 is `?1`): the name as SQLite reports it (`:id`, `@id`,
   * `$id`, `?3`), or null for an anonymous `?` or an index no token names.
   */
  readonly params: readonly (string | null)[]
  /** The first keyword is EXPLAIN. */
  readonly isExplain: boolean
  /** The first word in upper case (`SELECT`, `PRAGMA`, `WITH`, …), or '' when the statement starts with another token, such as `(`. */
  readonly firstWord: string
}

/** SQLITE_MAX_VARIABLE_NUMBER in the SQLite build libsql ships. */
const MAX_PARAMETER_INDEX = 32_766

type TokenKind = 'space' | 'semi' | 'variable' | 'word' | 'other'

interface Token {
  readonly kind: TokenKind
  readonly start: number
  readonly end: number
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\f' || c === '\r'
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9'
}

/** SQLite's IdChar: letters, digits, `_`, `$` and every non-ASCII character. */
function isIdChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c === '_' || c === '$' || c > '\x7f'
}

/** Index just past the closing `quote`, where a doubled quote is an escaped one; the end if unclosed. */
function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2
      else return i + 1
    } else i++
  }
  return sql.length
}

/** A `:name`, `@name`, `$name` or `#name` parameter, with the `::` and `(…)` suffixes SQLite allows. */
function variableEnd(sql: string, start: number): number {
  let i = start + 1
  let n = 0
  while (i < sql.length) {
    const c = sql.charAt(i)
    if (isIdChar(c)) {
      n++
      i++
    } else if (c === '(' && n > 0) {
      i++
      while (i < sql.length && !isSpace(sql.charAt(i)) && sql[i] !== ')') i++
      return sql[i] === ')' ? i + 1 : i
    } else if (c === ':' && sql[i + 1] === ':') {
      i += 2
    } else break
  }
  return n === 0 ? start + 1 : i
}

function nextToken(sql: string, start: number): Token {
  const c = sql.charAt(start)
  const next = sql.charAt(start + 1)
  const token = (kind: TokenKind, end: number): Token => ({ kind, start, end })
  if (isSpace(c)) {
    let i = start + 1
    while (i < sql.length && isSpace(sql.charAt(i))) i++
    return token('space', i)
  }
  if (c === '-' && next === '-') {
    const eol = sql.indexOf('\n', start)
    return token('space', eol === -1 ? sql.length : eol + 1)
  }
  if (c === '/' && next === '*') {
    const close = sql.indexOf('*/', start + 2)
    return token('space', close === -1 ? sql.length : close + 2)
  }
  if (c === ';') return token('semi', start + 1)
  if (c === "'" || c === '"' || c === '`') return token('other', skipQuoted(sql, start, c))
  if (c === '[') {
    const close = sql.indexOf(']', start)
    return token('other', close === -1 ? sql.length : close + 1)
  }
  if (c === '?') {
    let i = start + 1
    while (i < sql.length && isDigit(sql.charAt(i))) i++
    return token('variable', i)
  }
  if (c === ':' || c === '@' || c === '$' || c === '#') {
    const end = variableEnd(sql, start)
    return token(end === start + 1 ? 'other' : 'variable', end)
  }
  if ((c === 'x' || c === 'X') && next === "'") return token('other', skipQuoted(sql, start + 1, "'"))
  if (isDigit(c) || (c === '.' && isDigit(next))) {
    let i = start + 1
    while (i < sql.length && (isIdChar(sql.charAt(i)) || sql[i] === '.')) i++
    return token('other', i)
  }
  if (isIdChar(c)) {
    let i = start + 1
    while (i < sql.length && isIdChar(sql.charAt(i))) i++
    return token('word', i)
  }
  return token('other', start + 1)
}

// complete.c: token classes and the transition table of sqlite3_complete().
const SEMI = 0
const WS = 1
const OTHER = 2
const EXPLAIN = 3
const CREATE = 4
const TEMP = 5
const TRIGGER = 6
const END = 7
const START_STATE = 1
const TRANSITIONS: readonly (readonly number[])[] = [
  /* 0 INVALID */ [1, 0, 2, 3, 4, 2, 2, 2],
  /* 1 START   */ [1, 1, 2, 3, 4, 2, 2, 2],
  /* 2 NORMAL  */ [1, 2, 2, 2, 2, 2, 2, 2],
  /* 3 EXPLAIN */ [1, 3, 3, 2, 4, 2, 2, 2],
  /* 4 CREATE  */ [1, 4, 2, 2, 2, 4, 5, 2],
  /* 5 TRIGGER */ [6, 5, 5, 5, 5, 5, 5, 5],
  /* 6 SEMI    */ [6, 6, 5, 5, 5, 5, 5, 7],
  /* 7 END     */ [1, 7, 5, 5, 5, 5, 5, 5],
]

const KEYWORD_CLASS: Readonly<Record<string, number>> = {
  EXPLAIN,
  CREATE,
  TEMP,
  TEMPORARY: TEMP,
  TRIGGER,
  END,
}

function tokenClass(sql: string, token: Token): number {
  switch (token.kind) {
    case 'space':
      return WS
    case 'semi':
      return SEMI
    case 'word':
      return KEYWORD_CLASS[sql.slice(token.start, token.end).toUpperCase()] ?? OTHER
    default:
      return OTHER
  }
}

/** Parameter slots as SQLite numbers them: `?` takes the next index, `?N` is N, a name keeps its first index. */
function numberParameters(sql: string, tokens: readonly Token[]): (string | null)[] {
  const params: (string | null)[] = []
  const indexByName = new Map<string, number>()
  for (const token of tokens) {
    if (token.kind !== 'variable') continue
    const text = sql.slice(token.start, token.end)
    if (text === '?') {
      params.push(null)
    } else if (text.startsWith('?')) {
      const index = Number(text.slice(1))
      if (!Number.isInteger(index) || index < 1 || index > MAX_PARAMETER_INDEX) continue
      while (params.length < index) params.push(null)
      if (params[index - 1] === null) params[index - 1] = text
    } else if (!indexByName.has(text)) {
      params.push(text)
      indexByName.set(text, params.length)
    }
  }
  return params
}

/**
 * Splits `sql` into statements the way sqlite3_complete() sees them, so a semicolon inside a
 * string, a comment or a CREATE TRIGGER body does not end a statement. Empty statements
 * (only whitespace, comments and semicolons) are dropped.
 */
export function scanStatements(sql: string): ScannedStatement[] {
  const statements: ScannedStatement[] = []
  let state = START_STATE
  let tokens: Token[] = []
  const finish = (end: number) => {
    const first = tokens[0]
    if (first !== undefined) {
      statements.push({
        sql: sql.slice(first.start, end),
        params: numberParameters(sql, tokens),
        isExplain: tokenClass(sql, first) === EXPLAIN,
        firstWord: first.kind === 'word' ? sql.slice(first.start, first.end).toUpperCase() : '',
      })
    }
    tokens = []
  }
  let offset = 0
  while (offset < sql.length) {
    const token = nextToken(sql, offset)
    offset = token.end
    const cls = tokenClass(sql, token)
    const from = state
    state = TRANSITIONS[state]?.[cls] ?? START_STATE
    if (cls === SEMI && state === START_STATE) {
      if (from !== START_STATE) finish(token.start)
      continue
    }
    if (tokens.length > 0 || cls !== WS) tokens.push(token)
  }
  const last = tokens.at(-1)
  if (last !== undefined) finish(last.kind === 'space' ? last.start : last.end)
  return statements
}
