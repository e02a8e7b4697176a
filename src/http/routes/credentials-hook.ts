import type { FastifyInstance } from 'fastify'
import { isRelayError } from '../../errors.js'
import { parseCredentialsChangedBody, type CredentialsFlow } from '../../usecases/credentials-changed.js'
import type { CredentialsOutcome } from '../../ops/metrics.js'
import { bearerAuth } from '../bearer-auth.js'
import { CallLimit, FailureLimit } from '../rate-limit.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'

/**
 * `POST /hooks/credentials-changed`: the Kratos `web_hook` of the settings flow's credential methods
 * and of the recovery flow tells that an identity's credentials changed; the relay queues the end of
 * every Hydra login session of the identity. Authenticated as the login hook (LOGIN_HOOK_API_KEYS),
 * with failures counted apart. 204 once recorded durably, so that Kratos goes on with its flow.
 */
export async function credentialsHookRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  app.post('/hooks/credentials-changed', {
    bodyLimit: relay.config.http.hookBodyLimit,
    onRequest: bearerAuth({
      keys: relay.config.loginHook.apiKeys,
      name: 'credentials hook',
      failures: new FailureLimit(relay.config.authFailures),
      perKey: new CallLimit(relay.config.loginHook.rateLimit, relay.config.loginHook.rateWindowSeconds),
      // Refused before the body is read: no flow to count it under (nor for a body that names none).
      onRefused: (outcome) => relay.metrics.credentialsChanged('', outcome)
    })
  }, async (request, reply) => {
    let flow: CredentialsFlow | '' = ''
    try {
      const input = parseCredentialsChangedBody(request.body)
      flow = input.flow
      const result = await relay.credentialsChanged(input)
      const outcome: CredentialsOutcome = result.steps === 0 ? 'nothing_to_do' : result.queued > 0 ? 'queued' : 'already_queued'
      relay.metrics.credentialsChanged(flow, outcome)
      request.logFields = {
        outcome: `credentials_changed_${outcome}`,
        identity: result.identityId,
        flow,
        // Not `method`: the request line's own field.
        ...(input.method !== undefined ? { credentialMethod: input.method } : {}),
        sids: result.sids.length,
        queued: result.queued
      }
      return await reply.code(204).send()
    } catch (err) {
      relay.metrics.credentialsChanged(flow, isRelayError(err) && err.status === 400 ? 'invalid' : 'unavailable')
      throw err
    }
  })
  refuseOtherMethods(app, '/hooks/credentials-changed')
}
