import type { ApiKeyScope, KeyLimits } from '../../protocol/index.ts'

/**
 * How long this isolate trusts a key lookup. A revocation reaches other isolates within this
 * time; the isolate that handled the DELETE forgets the key at once.
 */
export const API_KEY_CACHE_TTL_MS = 5_000
const API_KEY_CACHE_MAX_ENTRIES = 10_000

export interface CachedKey {
  /** null when the key is unknown or revoked. */
  key: { id: string; hash: string; scopes: ApiKeyScope[]; limits: KeyLimits } | null
  expiresAt: number
}

/** Per-isolate memo of API key rows, so inference does not hit libSQL on every request. */
export class ApiKeyCache {
  readonly #entries = new Map<string, CachedKey>()

  get(id: string, now: number): CachedKey['key'] | undefined {
    const entry = this.#entries.get(id)
    if (!entry) return undefined
    if (entry.expiresAt <= now) {
      this.#entries.delete(id)
      return undefined
    }
    return entry.key
  }

  set(id: string, key: CachedKey['key'], now: number): void {
    if (this.#entries.size >= API_KEY_CACHE_MAX_ENTRIES) this.#entries.clear()
    this.#entries.set(id, { key, expiresAt: now + API_KEY_CACHE_TTL_MS })
  }

  forget(id: string): void {
    this.#entries.delete(id)
  }
}
