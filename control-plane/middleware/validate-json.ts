import type { Context } from 'hono'
import type { z } from 'zod'
import { LlorchError, MAX_JSON_DEPTH, describeIssues, formatIssuePath, nestsDeeperThan } from '../../protocol/index.ts'

/** The parser's message may quote the body; this much of it is enough to say where. */
const MAX_SYNTAX_MESSAGE_CHARS = 200

/**
 * Reads and validates a JSON body. Malformed JSON and schema failures are 400s naming the
 * field at fault (OpenAI's `param`); nothing a client sends can become a 500 here.
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, { emptyAs }: { emptyAs?: unknown } = {}): Promise<z.infer<S>> {
  let json: unknown
  let text: string
  try {
    text = await c.req.text()
  } catch {
    throw new LlorchError('invalid_request', 'request body could not be read')
  }
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new LlorchError('invalid_request', `request body nests deeper than ${MAX_JSON_DEPTH} levels`)
  try {
    json = text.trim() === '' && emptyAs !== undefined ? emptyAs : JSON.parse(text)
  } catch (error) {
    // V8's message says where: "Expected ',' or '}' after property value in JSON at position 14 (line 1 column 15)".
    const where = error instanceof SyntaxError ? `: ${error.message.slice(0, MAX_SYNTAX_MESSAGE_CHARS)}` : ''
    throw new LlorchError('invalid_request', `request body is not valid JSON${where}`)
  }
  return parseInput(schema, json, 'request body')
}

/** Validates what a client sent; a failure is a 400 naming the first field at fault. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input)
  if (parsed.success) return parsed.data
  const first = parsed.error.issues[0]
  throw new LlorchError('invalid_request', `invalid ${what}: ${describeIssues(parsed.error.issues)}`, {
    ...(first ? { param: formatIssuePath(first.path) } : {}),
  })
}
