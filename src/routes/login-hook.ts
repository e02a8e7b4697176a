import type { FastifyInstance } from 'fastify'
import type { Relay } from '../app.js'
import { bearerToken } from '../api-keys.js'
import { RelayError, isRelayError } from '../errors.js'
import { parseLoginHookBody } from '../login-hook.js'
import type { HookOutcome } from '../metrics.js'
import { refuseOtherMethods } from './refuse-other-methods.js'

/**
 * `POST /hooks/login`: the Kratos login `web_hook` (or a login/consent app) tells which identity
 * logged in to which Hydra login session. Authenticated by `Authorization: Bearer` against
 * LOGIN_HOOK_API_KEYS; without keys it refuses everything. 204 once stored.
 */
export async function loginHookRoutes (app: FastifyInstance, { relay }: { relay: Relay }): Promise<void> {
  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.post('/hooks/login', {
    bodyLimit: relay.config.http.hookBodyLimit,
    // Before the body is read: an unauthenticated caller gets nothing parsed.
    onRequest: async (request) => {
      if (relay.config.loginHook.apiKeys.length === 0) {
        relay.metrics.hook('not_configured')
        throw new RelayError('ERR_NOT_CONFIGURED', 'login hook is not configured')
      }
      if (!relay.checkHookKey(bearerToken(request.headers.authorization))) {
        relay.metrics.hook('unauthorized')
        throw new RelayError('ERR_UNAUTHORIZED', 'missing or wrong API key')
      }
    }
  }, async (request, reply) => {
    try {
      const result = await relay.indexLogin(parseLoginHookBody(request.body))
      relay.metrics.hook(result.lateLogout ? 'late_logout' : 'indexed')
      if (result.lateLogout) request.log.info('login indexed after its logout; revocation queued')
      return await reply.code(204).send()
    } catch (err) {
      relay.metrics.hook(hookFailure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/hooks/login')

  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="logout-relay"')
    return payload
  })
}

function hookFailure (err: unknown): HookOutcome {
  if (!isRelayError(err)) return 'unavailable'
  if (err.code === 'ERR_LOGIN_CHALLENGE_UNKNOWN') return 'unknown_challenge'
  return err.status === 400 ? 'invalid' : 'unavailable'
}
