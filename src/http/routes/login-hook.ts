import type { FastifyInstance } from 'fastify'
import { isRelayError } from '../../errors.js'
import { parseLoginHookBody } from '../../usecases/login-hook.js'
import type { HookOutcome } from '../../ops/metrics.js'
import { bearerAuth } from '../bearer-auth.js'
import { CallLimit, FailureLimit } from '../rate-limit.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'

/**
 * `POST /hooks/login`: the Kratos login `web_hook` (or a login/consent app) tells which identity
 * logged in to which Hydra login session. Authenticated by `Authorization: Bearer` against
 * LOGIN_HOOK_API_KEYS; without keys it refuses everything. 204 once stored.
 */
export async function loginHookRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.post('/hooks/login', {
    bodyLimit: relay.config.http.hookBodyLimit,
    onRequest: bearerAuth({
      keys: relay.config.loginHook.apiKeys,
      name: 'login hook',
      failures: new FailureLimit(relay.config.authFailures),
      perKey: new CallLimit(relay.config.loginHook.rateLimit, relay.config.loginHook.rateWindowSeconds),
      onRefused: (outcome) => relay.metrics.hook(outcome)
    })
  }, async (request, reply) => {
    try {
      const result = await relay.indexLogin(parseLoginHookBody(request.body))
      relay.metrics.hook(result.lateLogout ? 'late_logout' : 'indexed')
      request.logFields = { outcome: result.lateLogout ? 'late_logout' : 'indexed' }
      return await reply.code(204).send()
    } catch (err) {
      relay.metrics.hook(hookFailure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/hooks/login')
}

function hookFailure (err: unknown): HookOutcome {
  if (!isRelayError(err)) return 'unavailable'
  if (err.status === 429) return 'rate_limited'
  if (err.code === 'ERR_LOGIN_CHALLENGE_UNKNOWN') return 'unknown_challenge'
  if (err.code === 'ERR_SID_CONFLICT') return 'conflict'
  return err.status === 400 ? 'invalid' : 'unavailable'
}
