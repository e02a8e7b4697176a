import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * Checks a presented key against the configured ones (several, for rotation). Every key is compared,
 * in constant time over SHA-256 digests, so that neither the position of a match nor a key's length
 * shows in the timing.
 */
export function createApiKeyCheck (keys: readonly string[]): (presented: string | undefined) => boolean {
  const digests = keys.map(digest)
  return (presented) => {
    if (presented === undefined || presented === '') return false
    const candidate = digest(presented)
    let match = false
    for (const key of digests) match = timingSafeEqual(candidate, key) || match
    return match
  }
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '')
  return match?.[1]
}
