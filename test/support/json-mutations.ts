import fc from 'fast-check'

/**
 * JSON text spliced in as written: nesting thousands of levels deep (the test never recurses
 * through it itself), number literals no JS number prints, tokens that are not JSON at all.
 */
export class RawJson {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
}

/** Like `JSON.stringify`, with `RawJson` written out verbatim. */
export function toJsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, inner]) => `${JSON.stringify(key)}:${toJsonText(inner)}`)
      .join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** `depth` levels of arrays or objects, closed or left open. */
export const deepNesting: fc.Arbitrary<RawJson> = fc
  .record({ depth: fc.integer({ min: 1, max: 20_000 }), object: fc.boolean(), closed: fc.boolean() })
  .map(({ depth, object, closed }) => {
    const [open, inner, close] = object ? ['{"a":', '1', '}'] : ['[', '', ']']
    return new RawJson(open.repeat(depth) + inner + (closed ? close.repeat(depth) : ''))
  })

const oddLiterals = fc.constantFrom(
  '1e400',
  '-0',
  '1.0e-400',
  '123456789012345678901234567890',
  '0x10',
  'NaN',
  'Infinity',
  'undefined',
  "'x'",
  '01',
  '.5',
  'tru',
  '"\\ud800"',
  '"\\u00"',
)

/** A string of `min`–`max` UTF-16 units, built by repetition so megabytes cost nothing to make. */
export function longString(min: number, max: number): fc.Arbitrary<string> {
  return fc
    .tuple(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }), fc.integer({ min, max }))
    .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length))
}

/** An array of equal items, often one past a `max` the schemas set on lists (16 stops, 64 GPUs, 256 replicas, 65,536 running tasks). */
export const longArray: fc.Arbitrary<RawJson> = fc
  .tuple(fc.oneof(fc.constantFrom(17, 65, 257, 65_537), fc.integer({ min: 100, max: 5_000 })), fc.constantFrom('0', '"t"', 'null', '{}', '[]'))
  .map(([length, item]) => new RawJson(`[${new Array<string>(length).fill(item).join(',')}]`))

/** Any value a field could wrongly hold: every JSON type, edge values, long strings and arrays, deep nesting. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 0.5, 2 ** 53 + 2, -1e308, '', ' ', [], {}, [null], { '': null }) },
  { weight: 1, arbitrary: oddLiterals.map((text) => new RawJson(text)) },
  { weight: 1, arbitrary: longString(1_000, 70_000) },
  { weight: 1, arbitrary: longArray },
  { weight: 1, arbitrary: deepNesting },
)

type Path = readonly (string | number)[]

/** Every path below `value`, each array element and object member, the root excluded. */
export function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const children: Array<[string | number, unknown]> = Array.isArray(value)
    ? value.map((inner, i): [number, unknown] => [i, inner])
    : value !== null && typeof value === 'object'
      ? Object.entries(value)
      : []
  return children.flatMap(([key, inner]) => [[...prefix, key], ...pathsOf(inner, [...prefix, key])])
}

function isContainer(value: unknown): value is Record<string | number, unknown> {
  return value !== null && typeof value === 'object'
}

function parentOf(root: unknown, path: Path): unknown {
  let current = root
  for (const key of path.slice(0, -1)) {
    if (!isContainer(current)) return undefined
    current = current[key]
  }
  return current
}

type Mutation = { kind: 'replace' | 'remove' | 'add'; path: Path; key: string; value: unknown }

function apply(root: unknown, { kind, path, key, value: shared }: Mutation): void {
  // Values such as `[]` from constantFrom are one object across runs: a copy keeps a later `add`
  // from pushing a value into itself (a cycle no serializer ends).
  const value = shared instanceof RawJson ? shared : structuredClone(shared)
  const last = path.at(-1)
  const parent = parentOf(root, path)
  if (!isContainer(parent) || last === undefined || !(last in parent)) return
  if (kind === 'replace') parent[last] = value
  else if (kind === 'remove' && Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1)
  else if (kind === 'remove') delete parent[last]
  else {
    const target = parent[last]
    if (isContainer(target) && !Array.isArray(target)) target[key] = value
    else if (Array.isArray(target)) target.push(value)
  }
}

/**
 * Valid documents broken in one to three places: a field given a wrong value, removed, or joined
 * by an unknown field (`extraKeys` suggests names the schema knows of elsewhere). The places are
 * taken from one sample of `base`, whose documents all have the same structure.
 */
export function mutatedJson(base: fc.Arbitrary<object>, extraKeys: readonly string[] = []): fc.Arbitrary<unknown> {
  const paths: Path[] = pathsOf(fc.sample(base, { numRuns: 1, seed: 0 })[0])
  const key = extraKeys.length > 0 ? fc.oneof(fc.constantFrom(...extraKeys), fc.string({ maxLength: 12 })) : fc.string({ maxLength: 12 })
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    kind: fc.constantFrom('replace', 'remove', 'add'),
    path: paths.length > 0 ? fc.constantFrom(...paths) : fc.constant([]),
    key,
    value: wrongValue,
  })
  const rootAdd = fc.record({ key, value: wrongValue })
  return fc.tuple(base, fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.option(rootAdd, { freq: 3 })).map(([doc, mutations, extra]) => {
    const broken: unknown = structuredClone(doc)
    for (const m of mutations) apply(broken, m)
    if (extra && isContainer(broken) && !Array.isArray(broken)) broken[extra.key] = extra.value instanceof RawJson ? extra.value : structuredClone(extra.value)
    return broken
  })
}

/** Text or bytes as they travel: a body or a WebSocket frame. */
export type Payload = string | Uint8Array

/**
 * What a hostile or broken client sends where `base` is expected: the valid document, mutated
 * ones, arbitrary JSON, deep nesting, truncated or non-JSON text, invalid UTF-8, nothing at all.
 */
export function hostilePayloads(base: fc.Arbitrary<object>, extraKeys: readonly string[] = []): fc.Arbitrary<Payload> {
  return fc.oneof(
    { weight: 10, arbitrary: mutatedJson(base, extraKeys).map(toJsonText) },
    { weight: 3, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 2, arbitrary: base.map(toJsonText) },
    { weight: 1, arbitrary: deepNesting.map((raw) => raw.text) },
    { weight: 1, arbitrary: fc.tuple(base.map(toJsonText), fc.nat()).map(([text, cut]) => text.slice(0, cut % Math.max(1, text.length))) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n', 'null', '[]', '{}', '"{}"', '\uFEFF{}') },
  )
}

/** The text a receiver decodes from `payload` (UTF-8, invalid sequences replaced, a leading BOM dropped). */
export function decodedText(payload: Payload): string {
  return new TextDecoder().decode(typeof payload === 'string' ? new TextEncoder().encode(payload) : payload)
}

export function byteLength(payload: Payload): number {
  return typeof payload === 'string' ? new TextEncoder().encode(payload).byteLength : payload.byteLength
}
