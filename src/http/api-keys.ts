import { hash, timingSafeEqual } from 'node:crypto'
import { BEARER_TOKEN_SYNTAX } from '../config.js'

const digest = (value: string): Buffer => hash('sha256', value, 'buffer')

/**
 * Matches a presented key against the configured ones (several, for rotation): the position of the
 * key it is, or -1. Every key is compared, in constant time over SHA-256 digests, so that neither the
 * position of a match nor a key's length shows in the timing.
 */
export function createApiKeyMatcher (keys: readonly string[]): (presented: string | undefined) => number {
  const digests = keys.map(digest)
  return (presented) => {
    if (presented === undefined || presented === '') return -1
    const candidate = digest(presented)
    let match = -1
    digests.forEach((key, i) => { if (timingSafeEqual(candidate, key)) match = i })
    return match
  }
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  const token = match?.[1]
  return token !== undefined && BEARER_TOKEN_SYNTAX.test(token) ? token : undefined
}

/**
 * A key's fingerprint, for audit records and logs: the first 16 hex digits of its SHA-256, enough to
 * tell the configured keys apart and nothing to guess a random key from.
 */
export function keyFingerprint (key: string): string {
  return digest(key).toString('hex').slice(0, 16)
}
