import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { RelayError, isRelayError } from '../../errors.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'

/**
 * `POST /backchannel-logout`: the `backchannel_logout_uri` of the Hydra clients (OIDC Back-Channel
 * Logout 1.0 §2.5, §2.8). 200 once the revocation is recorded durably, 400 for any invalid request or
 * token, 503 with Retry-After when the relay cannot act durably now. Never cached.
 */
export async function backchannelLogoutRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  // Form bodies only, and only here: JSON or text sent to this route is a 415.
  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: relay.config.http.logoutBodyLimit })

  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  })

  app.post('/backchannel-logout', async (request, reply) => {
    try {
      const token = logoutTokenOf(request.body)
      const result = await relay.logout(token)
      relay.metrics.logout(result.outcome)
      request.logFields = { outcome: result.outcome, ...('identityId' in result ? { identity: result.identityId } : {}) }
      return await reply.code(200).send()
    } catch (err) {
      if (isRelayError(err) && err.status === 400) {
        relay.metrics.logout('rejected', err.reason ?? 'request')
        request.log.warn({ reason: err.reason ?? 'request', error: err.message }, 'back-channel logout rejected')
      } else if (isRelayError(err) && err.status === 503) {
        relay.metrics.logout('unavailable')
      }
      throw err
    }
  })
  refuseOtherMethods(app, '/backchannel-logout')
}

/** The one `logout_token` form field; other fields are ignored (OIDC BCL §2.5). */
function logoutTokenOf (body: unknown): string {
  const token = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['logout_token'] : undefined
  if (Array.isArray(token)) throw new RelayError('ERR_REQUEST_INVALID', 'logout_token must be sent once')
  if (typeof token !== 'string' || token === '') throw new RelayError('ERR_REQUEST_INVALID', 'logout_token is required')
  return token
}
