import type { FastifyRequest } from 'fastify'
import { bearerToken, createApiKeyMatcher } from './api-keys.js'
import { RelayError } from '../errors.js'
import type { FixedWindowLimiter } from './rate-limit.js'

export type AuthOutcome = 'not_configured' | 'unauthorized' | 'rate_limited'

export interface BearerAuthOptions {
  /** The accepted keys; none means the route is not configured and refuses everything. */
  keys: readonly string[]
  /** What the 503 says is not configured, e.g. "login hook". */
  name: string
  /** Failed attempts per client address: past the limit the address is refused before any check. */
  failures: FixedWindowLimiter
  /** Requests per accepted key. */
  perKey?: FixedWindowLimiter
  onRefused?: (outcome: AuthOutcome) => void
}

/**
 * An `onRequest` guard for `Authorization: Bearer <key>` routes (RFC 6750 §2.1): runs before the body
 * is read, so an unauthenticated caller gets nothing parsed. No key configured is a 503; a missing or
 * wrong key a 401 (the error handler adds `WWW-Authenticate`). Brute force is slowed per client
 * address, and a leaked or runaway key per key. The key itself is never logged.
 */
export function bearerAuth (options: BearerAuthOptions) {
  const match = createApiKeyMatcher(options.keys)
  const refuse = (outcome: AuthOutcome, error: RelayError): RelayError => {
    options.onRefused?.(outcome)
    return error
  }
  const tooMany = (seconds: number): RelayError =>
    new RelayError('ERR_TOO_MANY_REQUESTS', 'too many requests; retry later', { retryAfter: seconds })

  return async (request: FastifyRequest): Promise<void> => {
    if (options.keys.length === 0) {
      throw refuse('not_configured', new RelayError('ERR_NOT_CONFIGURED', `${options.name} is not configured`))
    }
    const blocked = options.failures.blocked(request.ip)
    if (blocked > 0) throw refuse('rate_limited', tooMany(blocked))
    const key = match(bearerToken(request.headers.authorization))
    if (key === -1) {
      options.failures.hit(request.ip)
      throw refuse('unauthorized', new RelayError('ERR_UNAUTHORIZED', 'missing or wrong API key'))
    }
    // Counted per configured key, by its position: the key itself is kept nowhere else.
    const wait = options.perKey === undefined ? 0 : options.perKey.hit(String(key))
    if (wait > 0) throw refuse('rate_limited', tooMany(wait))
  }
}
