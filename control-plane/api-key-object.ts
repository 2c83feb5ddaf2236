import { DurableObject } from 'cloudflare:workers'
import { z } from 'zod'
import { ApiKeyScope, KeyLimits } from '../protocol/index.ts'
import type { CachedKey } from './auth/api-key-cache.ts'
import { countStorageWrite } from './runtime/cost-counts.ts'
import { guardEntryPoint } from './runtime/entry-point-guard.ts'
import type { Bindings } from './runtime/env.ts'
import { registryFor } from './registry/registry-for.ts'
import { logError } from './runtime/log.ts'
import { EMPTY_LIMITER_STATE, LimiterState, acquire, settle } from './limits/key-limiter.ts'
import type { LimitDecision } from './limits/key-limiter.ts'
import { findApiKey } from './registry/api-keys.ts'

const StoredKey = z.object({ id: z.string(), hash: z.string(), scopes: z.array(ApiKeyScope), limits: KeyLimits.default({}), revoked: z.boolean() })
/** What the key used, with the limits it was last counted against (a settle counts against those). */
const StoredUse = z.object({ limits: KeyLimits, state: LimiterState })
type StoredUse = z.infer<typeof StoredUse>
type StoredKey = z.infer<typeof StoredKey>

/** What a lookup answers; errors do not keep their class across RPC, so the outage is a value. */
export type KeyLookup = { ok: true; key: CachedKey['key'] } | { ok: false; code: 'registry_unavailable'; message: string }

/**
 * One API key, named by its key id: its hash, scopes and whether it is revoked. Workers ask it
 * when their isolate cache misses, so inference never reads the registry once a key is known
 * here, and keeps working while the registry is down. It also counts what the key uses against
 * its limits, one object per key, so every isolate sees the same counts.
 */
export class ApiKeyObject extends DurableObject<Bindings> {
  #known: StoredKey | null = null

  /** The key was issued (or re-stated): remember it. */
  put(key: { id: string; hash: string; scopes: ApiKeyScope[]; limits: KeyLimits }): Promise<void> {
    return this.#guard('put', () => this.#store({ ...key, revoked: false }))
  }

  /** The key was revoked: refuse it from now on. */
  revoke(): Promise<void> {
    return this.#guard('revoke', async () => {
      const known = await this.#read()
      if (known) this.#store({ ...known, revoked: true })
    })
  }

  /** An operator changed the key's limits. */
  setLimits(limits: KeyLimits): Promise<void> {
    return this.#guard('setLimits', async () => {
      const known = await this.#read()
      if (known) this.#store({ ...known, limits })
    })
  }

  /**
   * Counts a new task against `limits` (the key's own merged with its pool's defaults), or refuses
   * it naming the limit. A concurrent place is held until `settle`, or `holdMs` at most.
   */
  acquire(request: { taskId: string; limits: KeyLimits; holdMs: number }): Promise<LimitDecision> {
    return this.#guard('acquire', () => {
      const now = Date.now()
      const { state, decision } = acquire(this.#use().state, request.limits, { taskId: request.taskId, now, holdMs: request.holdMs })
      // A refusal changes nothing worth keeping (buckets refill from their stored time), so a key flooding costs no write.
      if (decision.ok) this.#saveUse({ limits: request.limits, state })
      return decision
    })
  }

  /** The task ended, or never ran: its concurrent place is free, and `tokens` (prompt + completion) are spent. */
  settle(request: { taskId: string; tokens: number }): Promise<void> {
    return this.#guard('settle', () => {
      const use = this.#use()
      if (use.state.leases[request.taskId] === undefined && request.tokens === 0) return
      this.#saveUse({ limits: use.limits, state: settle(use.state, use.limits, { ...request, now: Date.now() }) })
    })
  }

  /** The key as the Worker caches it (null when unknown or revoked). Reads the registry only the first time. */
  lookup(): Promise<KeyLookup> {
    return this.#guard('lookup', async () => {
      let known: StoredKey | null
      try {
        known = await this.#read()
      } catch (error) {
        logError('api_key.registry_read_failed', { key: this.ctx.id.name, error: String(error) })
        return { ok: false, code: 'registry_unavailable', message: 'the registry cannot be reached to check this API key; try again shortly' }
      }
      return { ok: true, key: known && !known.revoked ? { id: known.id, hash: known.hash, scopes: known.scopes, limits: known.limits } : null }
    })
  }

  /** From storage, else from the registry (keys issued before this object existed). */
  async #read(): Promise<StoredKey | null> {
    if (this.#known) return this.#known
    const stored: unknown = this.ctx.storage.kv.get('key')
    if (stored !== undefined) {
      this.#known = StoredKey.parse(stored)
      return this.#known
    }
    const id = this.ctx.id.name ?? ''
    const row = await findApiKey(registryFor(this.env), id)
    if (!row) return null
    const key = { id: row.id, hash: row.keyHash, scopes: row.scopes, limits: row.limits, revoked: row.revokedAt !== null }
    this.#store(key)
    return key
  }

  #store(key: StoredKey): void {
    countStorageWrite()
    this.ctx.storage.kv.put('key', key)
    this.#known = key
  }

  #use(): StoredUse {
    const stored: unknown = this.ctx.storage.kv.get('use')
    return stored === undefined ? { limits: {}, state: EMPTY_LIMITER_STATE } : StoredUse.parse(stored)
  }

  #saveUse(use: StoredUse): void {
    countStorageWrite()
    this.ctx.storage.kv.put('use', use)
  }

  #guard<T>(method: string, work: () => T | Promise<T>): Promise<T> {
    return guardEntryPoint({ object: 'ApiKeyObject', name: this.ctx.id.name, method }, work)
  }
}
