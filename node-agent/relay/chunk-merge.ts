/**
 * Coalescing of an engine's stream chunks on the agent: a chunk is merged into the one before it
 * where that loses nothing a client can see (text of the same choice, argument fragments of the
 * same tool call, logprobs arrays), so that frames and SSE events stay few. Anything the agent
 * does not know how to join (an unknown field that differs, usage, a finished choice) keeps the
 * chunks apart. Chunks are the agent's own parsed objects and are merged in place.
 */

/** A parsed engine chunk before validation: only what batching relies on is known. */
export interface RawChoice {
  index: number
  [key: string]: unknown
}
export interface RawChunk {
  choices: RawChoice[]
  [key: string]: unknown
}

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const nothing = (value: unknown): value is null | undefined => value === undefined || value === null
const isRawChoice = (value: unknown): value is RawChoice => isRecord(value) && typeof value.index === 'number' && Number.isInteger(value.index)

/** A chunk whose `choices` (absent counts as none) are objects with an integer index. */
export function isRawChunk(value: Record<string, unknown>): value is RawChunk {
  if (value.choices === undefined) value.choices = []
  return Array.isArray(value.choices) && value.choices.every(isRawChoice)
}

/** Chunk fields the Worker rewrites (the relay drops them), so chunks that differ there still merge. */
export const REWRITTEN_CHUNK_FIELDS = ['id', 'object', 'created', 'model'] as const
const CHUNK_JOINED = new Set<string>(['choices', ...REWRITTEN_CHUNK_FIELDS])
const CHOICE_JOINED = new Set(['index', 'delta', 'text', 'logprobs', 'finish_reason'])
const DELTA_TEXT = ['content', 'reasoning_content', 'reasoning', 'refusal'] as const
const DELTA_JOINED = new Set<string>(['role', 'tool_calls', ...DELTA_TEXT])
const LOGPROB_ARRAYS = new Set(['content', 'refusal', 'tokens', 'token_logprobs', 'top_logprobs', 'text_offset'])
const TOOL_CALL_FIELDS = new Set(['index', 'id', 'type', 'function'])

/** Planned writes: a merge is checked whole first and applied only if every part joins. */
type Writes = (() => void)[]

/** Fields outside `joined` must be equal scalars in both (absent and null count as equal). */
function sameOtherFields(a: Record<string, unknown>, b: Record<string, unknown>, joined: ReadonlySet<string>): boolean {
  for (const key in a) if (!joined.has(key) && a[key] !== b[key] && !(nothing(a[key]) && nothing(b[key]))) return false
  for (const key in b) if (!joined.has(key) && !(key in a) && !nothing(b[key])) return false
  return true
}

function planText(holder: Record<string, unknown>, key: string, value: unknown, writes: Writes): boolean {
  if (nothing(value)) return true
  if (typeof value !== 'string') return false
  const current = holder[key]
  if (nothing(current)) writes.push(() => (holder[key] = value))
  else if (typeof current !== 'string') return false
  else if (value !== '') writes.push(() => (holder[key] = current + value))
  return true
}

/** An argument fragment of the call `last` names (it may repeat the call's id, type and name). */
function continuesCall(last: Record<string, unknown>, piece: Record<string, unknown>): boolean {
  if (last.index !== piece.index) return false
  for (const key in piece) if (!TOOL_CALL_FIELDS.has(key)) return false
  if (!nothing(piece.id) && piece.id !== last.id) return false
  if (!nothing(piece.type) && piece.type !== last.type) return false
  const fn = piece.function
  const lastFn = last.function
  if (!isRecord(fn) || !isRecord(lastFn)) return false
  for (const key in fn) if (key !== 'name' && key !== 'arguments') return false
  if (!nothing(fn.name) && fn.name !== lastFn.name) return false
  return (nothing(fn.arguments) || typeof fn.arguments === 'string') && (nothing(lastFn.arguments) || typeof lastFn.arguments === 'string')
}

function planToolCalls(delta: Record<string, unknown>, value: unknown, writes: Writes): boolean {
  if (nothing(value)) return true
  if (!Array.isArray(value)) return false
  const existing: unknown = delta.tool_calls
  if (nothing(existing)) {
    writes.push(() => (delta.tool_calls = value))
    return true
  }
  if (!Array.isArray(existing)) return false
  const calls: unknown[] = [...existing]
  for (const piece of value) {
    if (!isRecord(piece)) return false
    const last = calls.at(-1)
    if (isRecord(last) && continuesCall(last, piece)) {
      const lastFn = isRecord(last.function) ? last.function : {}
      const fragment = isRecord(piece.function) && typeof piece.function.arguments === 'string' ? piece.function.arguments : ''
      const joined = `${typeof lastFn.arguments === 'string' ? lastFn.arguments : ''}${fragment}`
      calls[calls.length - 1] = { ...last, function: { ...lastFn, arguments: joined } }
    } else if (calls.some((call) => isRecord(call) && call.index === piece.index)) {
      return false
    } else {
      calls.push(piece)
    }
  }
  writes.push(() => (delta.tool_calls = calls))
  return true
}

function planDelta(choice: RawChoice, value: unknown, writes: Writes): boolean {
  if (nothing(value)) return true
  if (!isRecord(value)) return false
  const current = choice.delta
  if (nothing(current)) {
    writes.push(() => (choice.delta = value))
    return true
  }
  if (!isRecord(current)) return false
  // A field the agent does not know may mean anything; it travels in its own chunk.
  for (const key in current) if (!DELTA_JOINED.has(key) && !nothing(current[key])) return false
  for (const key in value) if (!DELTA_JOINED.has(key) && !nothing(value[key])) return false
  if (!nothing(value.role)) {
    if (nothing(current.role)) writes.push(() => (current.role = value.role))
    else if (current.role !== value.role) return false
  }
  for (const key of DELTA_TEXT) if (!planText(current, key, value[key], writes)) return false
  return planToolCalls(current, value.tool_calls, writes)
}

function planLogprobs(choice: RawChoice, value: unknown, writes: Writes): boolean {
  if (nothing(value)) return true
  if (!isRecord(value)) return false
  const current = choice.logprobs
  if (nothing(current)) {
    writes.push(() => (choice.logprobs = value))
    return true
  }
  if (!isRecord(current)) return false
  for (const side of [current, value]) {
    for (const key in side) if (!nothing(side[key]) && !(LOGPROB_ARRAYS.has(key) && Array.isArray(side[key]))) return false
  }
  writes.push(() => {
    for (const key in value) {
      const more: unknown = value[key]
      const list: unknown = current[key]
      if (!Array.isArray(more)) continue
      if (Array.isArray(list)) for (const entry of more) list.push(entry)
      else current[key] = more
    }
  })
  return true
}

function planChoice(target: RawChoice, next: RawChoice, writes: Writes): boolean {
  if (!nothing(target.finish_reason)) return false
  if (!sameOtherFields(target, next, CHOICE_JOINED)) return false
  if (!planText(target, 'text', next.text, writes)) return false
  if (!planDelta(target, next.delta, writes)) return false
  if (!planLogprobs(target, next.logprobs, writes)) return false
  if (!nothing(next.finish_reason)) writes.push(() => (target.finish_reason = next.finish_reason))
  return true
}

/**
 * Merges `next` into `into` when nothing is lost: each of its choices joins the choice of the same
 * index in `into` (or is added when `into` has none), and every other field is equal. Returns
 * false, with `into` untouched, otherwise.
 */
export function mergeChunk(into: RawChunk, next: RawChunk): boolean {
  if (!sameOtherFields(into, next, CHUNK_JOINED)) return false
  const writes: Writes = []
  for (const choice of next.choices) {
    const target = into.choices.find((c) => c.index === choice.index)
    if (target === undefined) writes.push(() => into.choices.push(choice))
    else if (!planChoice(target, choice, writes)) return false
  }
  for (const write of writes) write()
  return true
}

const shows = (value: unknown): boolean => !nothing(value) && value !== '' && !(Array.isArray(value) && value.length === 0)

/**
 * Whether a chunk shows the client anything beyond the assistant's role. A role-only chunk is not
 * the first token: it waits for real output, so that a failure before any still fails over.
 */
export function carriesOutput(chunk: RawChunk): boolean {
  for (const choice of chunk.choices) {
    for (const key in choice) {
      if (key === 'index') continue
      const value = choice[key]
      if (key !== 'delta') {
        if (shows(value)) return true
      } else if (isRecord(value)) {
        for (const field in value) if (field !== 'role' && shows(value[field])) return true
      }
    }
  }
  return false
}
