import { z } from 'zod'

/**
 * Hrana over HTTP, JSON encoding (versions 2 and 3): what a pipeline request may carry, as zod
 * schemas, and what the server answers. Unknown fields in requests are ignored (zod strips them),
 * so newer clients that add optional fields such as `replication_index` still parse.
 */

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

export const HranaValue = z.discriminatedUnion('type', [
  z.object({ type: z.literal('null') }),
  z.object({
    type: z.literal('integer'),
    value: z
      .string()
      .regex(/^-?\d{1,19}$/, 'expected a decimal 64-bit integer as a string')
      .refine((v) => BigInt(v) >= INT64_MIN && BigInt(v) <= INT64_MAX, 'expected a value in the signed 64-bit range'),
  }),
  z.object({ type: z.literal('float'), value: z.number() }),
  z.object({ type: z.literal('text'), value: z.string() }),
  z.object({ type: z.literal('blob'), base64: z.string().regex(BASE64, 'expected standard base64') }),
])
export type HranaValue = z.infer<typeof HranaValue>

const SqlId = z
  .number()
  .int()
  .min(-(2 ** 31))
  .max(2 ** 31 - 1)

/** Exactly one of `sql` and `sql_id`. */
const sqlSource = <T extends { sql?: string | null | undefined; sql_id?: number | null | undefined }>(v: T) =>
  (v.sql === undefined || v.sql === null) !== (v.sql_id === undefined || v.sql_id === null)
const SQL_SOURCE_MESSAGE = 'expected exactly one of `sql` and `sql_id`'

export const HranaStmt = z
  .object({
    sql: z.string().nullish(),
    sql_id: SqlId.nullish(),
    args: z.array(HranaValue).default([]),
    named_args: z.array(z.object({ name: z.string(), value: HranaValue })).default([]),
    want_rows: z.boolean().nullish(),
  })
  .refine(sqlSource, SQL_SOURCE_MESSAGE)
export type HranaStmt = z.infer<typeof HranaStmt>

export type HranaBatchCond =
  | { type: 'ok'; step: number }
  | { type: 'error'; step: number }
  | { type: 'not'; cond: HranaBatchCond }
  | { type: 'and'; conds: HranaBatchCond[] }
  | { type: 'or'; conds: HranaBatchCond[] }
  | { type: 'is_autocommit' }

const StepIndex = z.number().int().min(0)

export const HranaBatchCond: z.ZodType<HranaBatchCond> = z.lazy(() =>
  z.discriminatedUnion('type', [
    z.object({ type: z.literal('ok'), step: StepIndex }),
    z.object({ type: z.literal('error'), step: StepIndex }),
    z.object({ type: z.literal('not'), cond: HranaBatchCond }),
    z.object({ type: z.literal('and'), conds: z.array(HranaBatchCond) }),
    z.object({ type: z.literal('or'), conds: z.array(HranaBatchCond) }),
    z.object({ type: z.literal('is_autocommit') }),
  ]),
)

/** The highest step a condition refers to, or -1 when it refers to none. */
function highestStep(cond: HranaBatchCond): number {
  switch (cond.type) {
    case 'ok':
    case 'error':
      return cond.step
    case 'not':
      return highestStep(cond.cond)
    case 'and':
    case 'or':
      return Math.max(-1, ...cond.conds.map(highestStep))
    case 'is_autocommit':
      return -1
  }
}

export const HranaBatch = z
  .object({
    steps: z.array(z.object({ condition: HranaBatchCond.nullish(), stmt: HranaStmt })),
  })
  .superRefine((batch, ctx) => {
    batch.steps.forEach((step, i) => {
      if (step.condition && highestStep(step.condition) >= i) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'condition'],
          message: `a step's condition may only refer to earlier steps, step ${i} refers to step ${highestStep(step.condition)}`,
        })
      }
    })
  })
export type HranaBatch = z.infer<typeof HranaBatch>

const SqlOrSqlId = {
  sql: z.string().nullish(),
  sql_id: SqlId.nullish(),
}

export const HranaStreamRequest = z.discriminatedUnion('type', [
  z.object({ type: z.literal('close') }),
  z.object({ type: z.literal('execute'), stmt: HranaStmt }),
  z.object({ type: z.literal('batch'), batch: HranaBatch }),
  z.object({ type: z.literal('sequence'), ...SqlOrSqlId }).refine(sqlSource, SQL_SOURCE_MESSAGE),
  z.object({ type: z.literal('describe'), ...SqlOrSqlId }).refine(sqlSource, SQL_SOURCE_MESSAGE),
  z.object({ type: z.literal('store_sql'), sql_id: SqlId, sql: z.string() }),
  z.object({ type: z.literal('close_sql'), sql_id: SqlId }),
  z.object({ type: z.literal('get_autocommit') }),
])
export type HranaStreamRequest = z.infer<typeof HranaStreamRequest>

export const PipelineRequestBody = z.object({
  baton: z.string().nullish(),
  requests: z.array(HranaStreamRequest),
})
export type PipelineRequestBody = z.infer<typeof PipelineRequestBody>

// Responses. The server builds them directly; the schemas document the wire shape and let tests
// check what the server sends.

export const HranaError = z.object({ message: z.string(), code: z.string() })
export type HranaError = z.infer<typeof HranaError>

export const HranaCol = z.object({ name: z.string().nullable(), decltype: z.string().nullable() })
export type HranaCol = z.infer<typeof HranaCol>

export const HranaStmtResult = z.object({
  cols: z.array(HranaCol),
  rows: z.array(z.array(HranaValue)),
  affected_row_count: z.number().int().min(0),
  last_insert_rowid: z.string().nullable(),
})
export type HranaStmtResult = z.infer<typeof HranaStmtResult>

export const HranaBatchResult = z.object({
  step_results: z.array(HranaStmtResult.nullable()),
  step_errors: z.array(HranaError.nullable()),
})
export type HranaBatchResult = z.infer<typeof HranaBatchResult>

export const HranaDescribeResult = z.object({
  params: z.array(z.object({ name: z.string().nullable() })),
  cols: z.array(HranaCol),
  is_explain: z.boolean(),
  is_readonly: z.boolean(),
})
export type HranaDescribeResult = z.infer<typeof HranaDescribeResult>

export const HranaStreamResponse = z.discriminatedUnion('type', [
  z.object({ type: z.literal('close') }),
  z.object({ type: z.literal('execute'), result: HranaStmtResult }),
  z.object({ type: z.literal('batch'), result: HranaBatchResult }),
  z.object({ type: z.literal('sequence') }),
  z.object({ type: z.literal('describe'), result: HranaDescribeResult }),
  z.object({ type: z.literal('store_sql') }),
  z.object({ type: z.literal('close_sql') }),
  z.object({ type: z.literal('get_autocommit'), is_autocommit: z.boolean() }),
])
export type HranaStreamResponse = z.infer<typeof HranaStreamResponse>

export const HranaStreamResult = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ok'), response: HranaStreamResponse }),
  z.object({ type: z.literal('error'), error: HranaError }),
])
export type HranaStreamResult = z.infer<typeof HranaStreamResult>

export const PipelineResponseBody = z.object({
  baton: z.string().nullable(),
  base_url: z.string().nullable(),
  results: z.array(HranaStreamResult),
})
export type PipelineResponseBody = z.infer<typeof PipelineResponseBody>
