import type { z } from 'zod'
import type { SqlExec } from './counted-sql.ts'

/**
 * Runs a query on Durable Object SQLite storage and checks each row against `schema`, so rows
 * are typed by what they are rather than by what the query hoped for.
 */
export function sqlRows<S extends z.ZodType>(sql: SqlExec, schema: S, query: string, ...bindings: SqlStorageValue[]): z.infer<S>[] {
  return sql
    .exec(query, ...bindings)
    .toArray()
    .map((row) => schema.parse(row))
}

export function sqlRow<S extends z.ZodType>(sql: SqlExec, schema: S, query: string, ...bindings: SqlStorageValue[]): z.infer<S> | undefined {
  return sqlRows(sql, schema, query, ...bindings)[0]
}
