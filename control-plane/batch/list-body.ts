import type { ListedPage } from './listing-store.ts'

/** OpenAI's list shape for one page of a listing: the items still there (one deleted meanwhile is left out) and whether more follow. */
export function listBody<T extends { id: string }>(page: ListedPage, items: ReadonlyArray<T | null>) {
  const data = items.filter((item): item is T => item !== null)
  return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore }
}

/** An object's answer as an item of the list: a refusal (gone, another key's) is no item. */
export const itemOf = <T>(answer: { ok: true; value: T } | { ok: false }): T | null => (answer.ok ? answer.value : null)
