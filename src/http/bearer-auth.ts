import type { FastifyRequest } from 'fastify'
import { RelayError } from '../errors.js'
import { bearerToken, createApiKeyMatcher, keyFingerprint } from './api-keys.js'
import type { CallLimit, FailureLimit } from './rate-limit.js'

export type AuthOutcome = 'not_configured' | 'unauthorized' | 'rate_limited'

export interface BearerAuthOptions {
  /** The accepted keys; none means the route is not configured and refuses everything. */
  keys: readonly string[]
  /** What the 503 says is not configured, e.g. "login hook". */
  name: string
  /** Failed attempts of this API (its own counters, shared with no other API). */
  failures: FailureLimit
  /** Calls per accepted key. */
  perKey?: CallLimit
  onRefused?: (outcome: AuthOutcome) => void
}

/**
 * An `onRequest` guard for `Authorization: Bearer <key>` routes (RFC 6750 §2.1): runs before the body
 * is read, so an unauthenticated caller gets nothing parsed. No key configured is a 503; a missing or
 * wrong key a 401 (the error handler adds `WWW-Authenticate`), and past the failure limit a 429.
 *
 * The key is checked first: a right key always passes (a random key of 16 characters or more needs
 * no lockout to be safe from guessing), so that nobody can lock Kratos out by sending wrong keys from
 * the address Kratos shares with them (an ingress, a sidecar, NAT). Only failures are counted and
 * slowed. A runaway key is bounded by its own call limit. The key itself is never logged; the
 * request carries the accepted key's fingerprint (`request.apiKeyFingerprint`) for audit records.
 */
export function bearerAuth (options: BearerAuthOptions) {
  const match = createApiKeyMatcher(options.keys)
  const fingerprints = options.keys.map(keyFingerprint)
  const refuse = (outcome: AuthOutcome, error: RelayError): RelayError => {
    options.onRefused?.(outcome)
    return error
  }

  return async (request: FastifyRequest): Promise<void> => {
    if (options.keys.length === 0) {
      throw refuse('not_configured', new RelayError('ERR_NOT_CONFIGURED', `${options.name} is not configured`))
    }
    const key = match(bearerToken(request.headers.authorization))
    if (key === -1) {
      const wait = await options.failures.fail(request.ip)
      if (wait > 0) {
        throw refuse('rate_limited', new RelayError('ERR_TOO_MANY_REQUESTS', 'too many failed authentication attempts; retry later', { retryAfter: wait }))
      }
      throw refuse('unauthorized', new RelayError('ERR_UNAUTHORIZED', 'missing or wrong API key'))
    }
    request.apiKeyFingerprint = fingerprints[key] ?? null
    // Counted per configured key, by its position: the key itself is kept nowhere else.
    const wait = options.perKey === undefined ? 0 : await options.perKey.hit(String(key))
    if (wait > 0) throw refuse('rate_limited', new RelayError('ERR_TOO_MANY_REQUESTS', 'too many requests; retry later', { retryAfter: wait }))
  }
}
