import { DurableObject } from 'cloudflare:workers'
import type { BatchLineCounts } from '../protocol/index.ts'
import { LineCounts } from './batch/line-counts.ts'
import { ListingStore } from './batch/listing-store.ts'
import type { ListPage, ListedEntry, ListedKind, ListedPage } from './batch/listing-store.ts'
import { countedSql } from './storage/counted-sql.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import type { Bindings } from './runtime/env.ts'

/**
 * An index of files and batches: which exist and in what order they were made, for the list
 * routes. The objects themselves hold the records and answer who owns them; a listing only
 * points at them.
 */
export class ListingObject extends DurableObject<Bindings> {
  readonly #store: ListingStore
  readonly #lineCounts: LineCounts

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    const sql = countedSql(ctx.storage.sql)
    this.#store = new ListingStore(sql)
    this.#lineCounts = new LineCounts(sql)
  }

  add(entry: ListedEntry): Promise<void> {
    return this.#guard('add', () => this.#store.add(entry))
  }

  remove(kind: ListedKind, id: string): Promise<void> {
    return this.#guard('remove', () => this.#store.remove(kind, id))
  }

  page(request: ListPage): Promise<ListedPage> {
    return this.#guard('page', () => this.#store.page(request))
  }

  /** A batch's lines that ended since it last said. */
  countLines(delta: BatchLineCounts): Promise<void> {
    return this.#guard('countLines', () => this.#lineCounts.add(delta))
  }

  lineCounts(): Promise<BatchLineCounts> {
    return this.#guard('lineCounts', () => this.#lineCounts.read())
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'ListingObject', name: this.ctx.id.name, method }, work)
  }
}
