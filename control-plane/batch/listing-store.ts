import { z } from 'zod'
import type { SqlExec } from '../storage/counted-sql.ts'
import { sqlRow, sqlRows } from '../storage/sql-rows.ts'

/** The listing of one API key's files and batches is named by this; the admin's list of every batch by `ALL_BATCHES_LISTING`. */
export const keyListing = (apiKeyId: string) => `key:${apiKeyId}`
export const ALL_BATCHES_LISTING = 'all-batches'

/** What a listing indexes: files and batches. */
export const ListedKind = z.enum(['file', 'batch'])
export type ListedKind = z.infer<typeof ListedKind>

export const ListedEntry = z.object({
  kind: ListedKind,
  id: z.string(),
  apiKeyId: z.string(),
  /** A file's purpose; empty for a batch. */
  tag: z.string(),
  createdAt: z.number(),
})
export type ListedEntry = z.infer<typeof ListedEntry>

export interface ListPage {
  kind: ListedKind
  after: string | undefined
  limit: number
  order: 'asc' | 'desc'
  tag?: string | undefined
}

/** One page of entries and whether more follow. */
export interface ListedPage {
  entries: ListedEntry[]
  hasMore: boolean
}

const Row = z.object({ kind: ListedKind, id: z.string(), api_key_id: z.string(), tag: z.string(), created_at: z.number() })

/** Entries of one listing, newest (or oldest) first, paged by the id of the last one seen. */
export class ListingStore {
  readonly #sql: SqlExec

  constructor(sql: SqlExec) {
    this.#sql = sql
    sql.exec(`CREATE TABLE IF NOT EXISTS entries (
      kind TEXT NOT NULL, id TEXT NOT NULL, api_key_id TEXT NOT NULL, tag TEXT NOT NULL, created_at INTEGER NOT NULL,
      PRIMARY KEY (kind, id))`)
    sql.exec('CREATE INDEX IF NOT EXISTS entries_by_time ON entries (kind, created_at, id)')
  }

  add(entry: ListedEntry): void {
    this.#sql.exec(
      'INSERT OR REPLACE INTO entries (kind, id, api_key_id, tag, created_at) VALUES (?, ?, ?, ?, ?)',
      entry.kind,
      entry.id,
      entry.apiKeyId,
      entry.tag,
      entry.createdAt,
    )
  }

  remove(kind: ListedKind, id: string): void {
    this.#sql.exec('DELETE FROM entries WHERE kind = ? AND id = ?', kind, id)
  }

  /** A cursor that names no entry of this listing starts from the beginning, as an unknown id does at OpenAI. */
  page({ kind, after, limit, order, tag }: ListPage): ListedPage {
    const cursor = after === undefined ? undefined : sqlRow(this.#sql, Row, 'SELECT * FROM entries WHERE kind = ? AND id = ?', kind, after)
    const beyond = order === 'desc' ? '<' : '>'
    const direction = order === 'desc' ? 'DESC' : 'ASC'
    const filters = ['kind = ?']
    const bindings: SqlStorageValue[] = [kind]
    if (tag !== undefined) {
      filters.push('tag = ?')
      bindings.push(tag)
    }
    if (cursor) {
      filters.push(`(created_at, id) ${beyond} (?, ?)`)
      bindings.push(cursor.created_at, cursor.id)
    }
    const rows = sqlRows(
      this.#sql,
      Row,
      `SELECT * FROM entries WHERE ${filters.join(' AND ')} ORDER BY created_at ${direction}, id ${direction} LIMIT ?`,
      ...bindings,
      limit + 1,
    )
    return {
      entries: rows.slice(0, limit).map((row) => ({ kind: row.kind, id: row.id, apiKeyId: row.api_key_id, tag: row.tag, createdAt: row.created_at })),
      hasMore: rows.length > limit,
    }
  }
}
