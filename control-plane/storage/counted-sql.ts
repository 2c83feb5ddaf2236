import { countStorageWrite } from '../runtime/cost-counts.ts'

/** The part of Durable Object SQLite storage the objects use. */
export interface SqlExec {
  exec(query: string, ...bindings: SqlStorageValue[]): SqlStorageCursor<Record<string, SqlStorageValue>>
}

const WRITE_STATEMENT = /^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b/i

/** `sql` with every write statement counted, so the bench can say how many writes a task costs. */
export function countedSql(sql: SqlStorage): SqlExec {
  return {
    exec(query, ...bindings) {
      if (WRITE_STATEMENT.test(query)) countStorageWrite()
      return sql.exec(query, ...bindings)
    },
  }
}
