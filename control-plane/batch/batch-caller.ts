import type { Context } from 'hono'
import type { z } from 'zod'
import { LlorchError } from '../../protocol/index.ts'
import type { KeyLimits } from '../../protocol/index.ts'
import type { InferenceEnv } from '../answer/answer-task.ts'

/** The API key calling a files or batches route: the owner of what it makes, the only one that sees it. */
export function batchCaller(c: Context<InferenceEnv>): { keyId: string; limits: KeyLimits } {
  const principal = c.var.principal
  if (principal.kind !== 'api_key')
    throw new LlorchError('unauthorized', 'files and batches belong to an API key: call with an API key with the `inference` scope')
  return principal
}

/** A path id in the wrong shape names nothing: the same 404 as an id of another key. */
export function pathId(c: Context, shape: z.ZodType<string>, what: 'file' | 'batch'): string {
  const id = c.req.param('id') ?? ''
  if (!shape.safeParse(id).success) throw new LlorchError('not_found', `no ${what} "${id}"`)
  return id
}
