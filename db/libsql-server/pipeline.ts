import { runBatch } from './batch.ts'
import { retryWhileBusy, type BusyRetryOptions } from './busy-retry.ts'
import { hranaError, toHranaError } from './errors.ts'
import { executeStmt, resolveSql, singleStatement } from './execute-stmt.ts'
import type { HranaError, HranaStreamRequest, HranaStreamResponse, HranaStreamResult } from './hrana-schema.ts'
import { scanStatements } from './sql-scanner.ts'
import type { Stream } from './streams.ts'

/** sqld's limits on `store_sql`; @libsql/client stays under both (it caches 30 texts under 5,000 chars). */
export const MAX_STORED_SQL_COUNT = 50
export const MAX_STORED_SQL_BYTES = 5_000

const ok = (response: HranaStreamResponse): HranaStreamResult => ({ type: 'ok', response })
const failed = (error: HranaError): HranaStreamResult => ({ type: 'error', error })

/**
 * Runs a pipeline's requests in order on one stream. Each failure is that request's result;
 * the requests after it still run, as in sqld.
 */
export async function runPipeline(stream: Stream, requests: readonly HranaStreamRequest[], options: BusyRetryOptions): Promise<HranaStreamResult[]> {
  const results: HranaStreamResult[] = []
  for (const request of requests) {
    try {
      results.push(await runRequest(stream, request, options))
    } catch (error) {
      results.push(failed(toHranaError(error)))
    }
  }
  return results
}

async function runRequest(stream: Stream, request: HranaStreamRequest, options: BusyRetryOptions): Promise<HranaStreamResult> {
  if (stream.closed) return failed(hranaError('STREAM_CLOSED', `The stream was closed by an earlier request, cannot run "${request.type}"`))
  switch (request.type) {
    case 'close':
      stream.close()
      return ok({ type: 'close' })
    case 'execute': {
      const outcome = await executeStmt(stream, request.stmt, options)
      return outcome.ok ? ok({ type: 'execute', result: outcome.value }) : failed(outcome.error)
    }
    case 'batch':
      return ok({ type: 'batch', result: await runBatch(stream, request.batch, options) })
    case 'sequence': {
      const sql = resolveSql(stream, request)
      if (!sql.ok) return failed(sql.error)
      const connection = stream.connection()
      for (const statement of scanStatements(sql.value)) {
        await retryWhileBusy(() => connection.run(statement), options)
      }
      return ok({ type: 'sequence' })
    }
    case 'describe': {
      const sql = resolveSql(stream, request)
      if (!sql.ok) return failed(sql.error)
      const statement = singleStatement(sql.value)
      if (!statement.ok) return failed(statement.error)
      const connection = stream.connection()
      const result = await retryWhileBusy(() => connection.describe(statement.value), options)
      return ok({ type: 'describe', result })
    }
    case 'store_sql':
      return storeSql(stream, request.sql_id, request.sql)
    case 'close_sql':
      stream.sqls.delete(request.sql_id)
      return ok({ type: 'close_sql' })
    case 'get_autocommit':
      return ok({ type: 'get_autocommit', is_autocommit: !stream.inTransaction })
  }
}

function storeSql(stream: Stream, sqlId: number, sql: string): HranaStreamResult {
  if (stream.sqls.has(sqlId)) return failed(hranaError('SQL_ID_EXISTS', `sql_id ${sqlId} is already in use on this stream`))
  if (stream.sqls.size >= MAX_STORED_SQL_COUNT) {
    return failed(hranaError('SQL_STORE_TOO_MANY', `The server already stores ${stream.sqls.size} SQL texts, it cannot store more`))
  }
  const bytes = Buffer.byteLength(sql)
  if (bytes > MAX_STORED_SQL_BYTES) {
    return failed(hranaError('SQL_STORE_TOO_LARGE', `The statement is too large to be stored: ${bytes}/${MAX_STORED_SQL_BYTES} bytes`))
  }
  stream.sqls.set(sqlId, sql)
  return ok({ type: 'store_sql' })
}
