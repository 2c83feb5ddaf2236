import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * A check of `Authorization: Bearer <token>` against the configured token. Both sides are hashed
 * first so the comparison is constant-time whatever the lengths.
 */
export function bearerTokenCheck(expectedToken: string): (authorization: string | undefined) => boolean {
  const expected = digest(expectedToken)
  return function checkBearerToken(authorization) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
    const given = digest(match?.[1] ?? '')
    return timingSafeEqual(given, expected) && match !== null
  }
}
