import { z } from 'zod'
import { openRegistryFile } from './registry-file.ts'

const SchemaRow = z.object({ type: z.enum(['table', 'index', 'trigger', 'view']), name: z.string(), sql: z.string() })

/** One SQL literal: integers exact, reals with a decimal point, text quoted, blobs as X'…'. */
export function sqlLiteral(value: unknown): string {
  if (value === null) return 'NULL'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return value > 0 ? '9e999' : value < 0 ? '-9e999' : 'NULL'
    return Number.isInteger(value) ? `${value}.0` : String(value)
  }
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`
  if (value instanceof ArrayBuffer) return `X'${Buffer.from(value).toString('hex')}'`
  throw new Error(`export: a value of type ${typeof value} has no SQL literal`)
}

const quoteName = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * The registry as SQL that a new Turso database (`turso db shell DB < dump.sql`) or any libSQL
 * server takes: tables with their rows, drizzle's migration journal included (so `npm run
 * db:migrate` against it applies only newer migrations), then indexes, triggers and views.
 * Durable Object state is not in it: pool policies and key limits are rebuilt from these rows.
 */
export async function exportRegistrySql(file: string, write: (chunk: string) => void): Promise<{ tables: number; rows: number }> {
  const client = openRegistryFile(file)
  try {
    // One read transaction: every table as of the same moment, while the server keeps writing.
    const tx = await client.transaction('read')
    try {
      const schema = z
        .array(SchemaRow)
        .parse(
          (
            await tx.execute(
              "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid",
            )
          ).rows.map((r) => ({ ...r })),
        )
      write('PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n')
      let rows = 0
      const tables = schema.filter((s) => s.type === 'table')
      for (const table of tables) {
        write(`${table.sql};\n`)
        const result = await tx.execute(`SELECT * FROM ${quoteName(table.name)}`)
        const columns = result.columns.map(quoteName).join(', ')
        for (const row of result.rows) {
          write(`INSERT INTO ${quoteName(table.name)} (${columns}) VALUES(${result.columns.map((_, i) => sqlLiteral(row[i])).join(', ')});\n`)
          rows += 1
        }
      }
      const sequence = await tx.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")
      if (sequence.rows.length > 0) {
        write('DELETE FROM sqlite_sequence;\n')
        for (const row of (await tx.execute('SELECT name, seq FROM sqlite_sequence')).rows)
          write(`INSERT INTO sqlite_sequence (name, seq) VALUES(${sqlLiteral(row[0])}, ${sqlLiteral(row[1])});\n`)
      }
      for (const other of schema.filter((s) => s.type !== 'table')) write(`${other.sql};\n`)
      write('COMMIT;\n')
      return { tables: tables.length, rows }
    } finally {
      tx.close()
    }
  } finally {
    client.close()
  }
}
