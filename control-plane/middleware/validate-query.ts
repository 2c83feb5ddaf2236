import type { Context } from 'hono'
import type { z } from 'zod'
import { parseInput } from './validate-json.ts'

/** Reads and validates the query string; a bad or unknown parameter is a 400 naming it. */
export function readQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return parseInput(schema, c.req.query(), 'query')
}
