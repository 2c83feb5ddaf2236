import { z } from 'zod'
import { verifyCredential } from '../auth/credentials.ts'
import { countStorageWrite } from '../runtime/cost-counts.ts'

const StoredToken = z.object({ hash: z.string(), revoked: z.boolean() })
type StoredToken = z.infer<typeof StoredToken>

/** What a token check answers; errors do not keep their class across RPC, so each refusal is a value. */
export type TokenCheck = { ok: true } | { ok: false; code: 'unauthorized' | 'registry_unavailable'; message: string; revoked?: boolean }

/** The registry's row of the node, for nodes whose object does not hold their token yet; undefined when there is none. */
export type ReadNodeRow = () => Promise<{ tokenHash: string; revokedAt: Date | null } | undefined>

/**
 * A node's token hash and whether it is revoked, held by the node's object (in its key-value
 * storage, which a lookup of an unknown node only reads) so that an agent connects without a
 * registry read. Nodes created before their object held the hash are read from the registry once.
 */
export class NodeToken {
  readonly #kv: SyncKvStorage
  #known: StoredToken | null = null

  constructor(kv: SyncKvStorage) {
    this.#kv = kv
  }

  set(hash: string): void {
    this.#store({ hash, revoked: false })
  }

  revoke(): void {
    const known = this.#stored()
    if (known) this.#store({ ...known, revoked: true })
  }

  async verify(token: string, readRow: ReadNodeRow): Promise<TokenCheck> {
    let known = this.#stored()
    if (!known) {
      let row: Awaited<ReturnType<ReadNodeRow>>
      try {
        row = await readRow()
      } catch {
        return { ok: false, code: 'registry_unavailable', message: 'the registry cannot be reached to check this node token; try again shortly' }
      }
      if (!row)
        return {
          ok: false,
          code: 'unauthorized',
          message: 'unknown node token: no node holds it (deleted, or from another deployment); create a node with POST /v2/nodes',
        }
      known = { hash: row.tokenHash, revoked: row.revokedAt !== null }
      this.#store(known)
    }
    if (!(await verifyCredential(token, known.hash))) {
      return {
        ok: false,
        code: 'unauthorized',
        message: 'unknown node token: no node holds it (deleted, or from another deployment); create a node with POST /v2/nodes',
      }
    }
    if (known.revoked) return { ok: false, code: 'unauthorized', message: 'this node token was revoked; create a new node with POST /v2/nodes', revoked: true }
    return { ok: true }
  }

  #stored(): StoredToken | null {
    if (this.#known) return this.#known
    const stored: unknown = this.#kv.get('token')
    this.#known = stored === undefined ? null : StoredToken.parse(stored)
    return this.#known
  }

  #store(token: StoredToken): void {
    countStorageWrite()
    this.#kv.put('token', token)
    this.#known = token
  }
}
