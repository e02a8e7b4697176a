import type { FastifyRequest } from 'fastify'
import { bearerToken } from '../api-keys.js'
import { RelayError } from '../errors.js'

export interface ApiKeyAuthOptions {
  /** Whether any key is configured: without one, the route refuses every call. */
  configured: boolean
  /** Constant-time check of a presented key (see createApiKeyCheck). */
  check: (presented: string | undefined) => boolean
  /** Names the route in the 503 when no key is configured, e.g. "login hook". */
  name: string
  /** Counts a refusal. */
  onRefused?: (outcome: 'not_configured' | 'unauthorized') => void
}

/**
 * An `onRequest` hook for a route authenticated by `Authorization: Bearer <key>` (RFC 6750 §2.1):
 * it runs before the body is read, so that an unauthenticated caller gets nothing parsed. No key
 * configured is a 503 (`ERR_NOT_CONFIGURED`); a missing or wrong key a 401 (`ERR_UNAUTHORIZED`, which
 * the error handler answers with `WWW-Authenticate`). The key itself is never logged.
 */
export function apiKeyAuth (options: ApiKeyAuthOptions): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    if (!options.configured) {
      options.onRefused?.('not_configured')
      throw new RelayError('ERR_NOT_CONFIGURED', `${options.name} is not configured`)
    }
    if (!options.check(bearerToken(request.headers.authorization))) {
      options.onRefused?.('unauthorized')
      throw new RelayError('ERR_UNAUTHORIZED', 'missing or wrong API key')
    }
  }
}
