import { readFileSync } from 'node:fs'
import type { z } from 'zod'
import { describeIssues } from '../protocol/index.ts'

/** A JSON file checked against `schema`; throws one message naming the file, `what` it should be and the field. */
export function readJsonFile<S extends z.ZodType>(file: string, schema: S, what: string): z.infer<S> {
  let input: unknown
  try {
    input = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new Error(`${file}: cannot read ${what} (${error instanceof Error ? error.message : String(error)})`)
  }
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error.issues)}`)
  return parsed.data
}
