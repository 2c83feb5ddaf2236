/**
 * Deepest nesting any request body or frame may have. Tool schemas nest a few levels; thousands
 * of levels only serve to exhaust a parser's or serializer's stack after admission.
 */
export const MAX_JSON_DEPTH = 64

/**
 * Whether the JSON text nests arrays and objects deeper than `maxDepth`, found by one scan of the
 * text before anything parses it. Brackets inside strings do not count.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i)
    if (inString) {
      if (char === 0x5c) i++
      else if (char === 0x22) inString = false
    } else if (char === 0x22) {
      inString = true
    } else if (char === 0x5b || char === 0x7b) {
      depth++
      if (depth > maxDepth) return true
    } else if (char === 0x5d || char === 0x7d) {
      depth--
    }
  }
  return false
}
