/**
 * Node tokens and API keys: `lln.<nodeId>.<secret>` and `llk.<keyId>.<secret>`. The id lets the
 * control plane fetch one row and compare hashes in constant time instead of searching by
 * secret. Only the SHA-256 of the whole credential is stored.
 */

export type CredentialKind = 'node' | 'api_key'

const PREFIX_BY_KIND = { node: 'lln', api_key: 'llk' } as const satisfies Record<CredentialKind, string>
const ID_PREFIX_BY_KIND = { node: 'node_', api_key: 'key_' } as const satisfies Record<CredentialKind, string>

const SECRET_BYTES = 32
const ID_BYTES = 9
const CREDENTIAL_PATTERN = /^(lln|llk)\.((?:node|key)_[A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function randomBase64url(byteLength: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(byteLength)))
}

export function newId(kind: CredentialKind): string {
  return ID_PREFIX_BY_KIND[kind] + randomBase64url(ID_BYTES)
}

export interface IssuedCredential {
  id: string
  /** Shown to the operator once, never stored. */
  secret: string
  hash: string
  /** Enough of the credential to recognise it in listings. */
  prefix: string
}

export async function issueCredential(kind: CredentialKind, id: string = newId(kind)): Promise<IssuedCredential> {
  const secret = `${PREFIX_BY_KIND[kind]}.${id}.${randomBase64url(SECRET_BYTES)}`
  return { id, secret, hash: await hashCredential(secret), prefix: secret.slice(0, PREFIX_BY_KIND[kind].length + 1 + id.length + 5) }
}

export interface ParsedCredential {
  kind: CredentialKind
  id: string
  raw: string
}

/** Recognises a node token or API key by shape; anything else (the admin token included) is null. */
export function parseCredential(raw: string): ParsedCredential | null {
  const match = CREDENTIAL_PATTERN.exec(raw)
  if (!match) return null
  const kind: CredentialKind = match[1] === 'lln' ? 'node' : 'api_key'
  const id = match[2] ?? ''
  if (!id.startsWith(ID_PREFIX_BY_KIND[kind])) return null
  return { kind, id, raw }
}

export async function hashCredential(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** Compares two secrets (or hashes) without leaking where they differ. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  // Hashing first gives equal lengths, so the comparison time does not reveal the length either.
  const [ha, hb] = await Promise.all([hashCredential(a), hashCredential(b)])
  const encoder = new TextEncoder()
  return crypto.subtle.timingSafeEqual(encoder.encode(ha), encoder.encode(hb))
}

/** True when `secret` hashes to `storedHash`, compared in constant time. */
export async function verifyCredential(secret: string, storedHash: string): Promise<boolean> {
  const encoder = new TextEncoder()
  const computed = encoder.encode(await hashCredential(secret))
  const stored = encoder.encode(storedHash)
  return computed.byteLength === stored.byteLength && crypto.subtle.timingSafeEqual(computed, stored)
}

export function readBearer(header: string | undefined | null): string | null {
  if (!header) return null
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1] ?? null
}
