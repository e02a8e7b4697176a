import type { FastifyInstance } from 'fastify'
import { RelayError, isRelayError } from '../../errors.js'
import { parseGlobalLogoutBody, parseIdentityId, type GlobalLogoutStep } from '../../usecases/global-logout.js'
import type { AdminAction, AdminOutcome } from '../../ops/metrics.js'
import type { RevocationTarget } from '../../store/revocation-queue.js'
import { bearerAuth } from '../bearer-auth.js'
import { FailureLimit } from '../rate-limit.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'
import { deadLetterRoutes } from './admin-dead-letters.js'
import { revocationRoutes } from './admin-revocations.js'

/** The admin body is one boolean; anything this large is not one. */
const ADMIN_BODY_LIMIT = 4096

/**
 * The admin API, authenticated by `Authorization: Bearer` against ADMIN_API_KEYS (never the login
 * hook's keys); without keys it refuses everything with 503.
 *
 * - `POST /admin/identities/{id}/logout`: logs the identity out everywhere; 202 once every step is
 *   recorded durably, with the sids and steps queued.
 * - `GET /admin/identities/{id}/sessions`: the sids the relay knows for the identity, with expiry.
 * - the dead letters (`admin-dead-letters.ts`) and an identity's revocations (`admin-revocations.ts`),
 *   with the same keys and the same counter of failed attempts.
 */
export async function adminRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  // JSON only, and an empty body is no body: `curl -X POST -H 'content-type: application/json'` works.
  app.removeAllContentTypeParsers()
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: ADMIN_BODY_LIMIT }, (request, body, done) => {
    if (String(body).trim() === '') {
      done(null, undefined)
      return
    }
    parseJson(request, String(body), (err, parsed) => {
      if (err !== null) {
        relay.metrics.admin('logout', 'invalid')
        done(new RelayError('ERR_ADMIN_REQUEST_INVALID', 'the body is not valid JSON', { field: 'body', cause: err }), undefined)
      } else {
        done(null, parsed)
      }
    })
  })
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
  })

  // The admin API's failed attempts are counted apart from the login hook's.
  const failures = new FailureLimit(relay.config.authFailures)
  const auth = (action: AdminAction) => bearerAuth({
    keys: relay.config.adminApi.apiKeys,
    name: 'admin API',
    failures,
    onRefused: (outcome) => relay.metrics.admin(action, outcome)
  })

  app.post<{ Params: { id: string } }>('/admin/identities/:id/logout', {
    bodyLimit: ADMIN_BODY_LIMIT,
    onRequest: auth('logout')
  }, async (request, reply) => {
    try {
      const identityId = parseIdentityId(request.params.id)
      const { revokeConsents } = parseGlobalLogoutBody(request.body)
      const result = await relay.logOutEverywhere({ identityId, revokeConsents, cause: { kind: 'admin-api', keyFingerprint: request.apiKeyFingerprint ?? '' } })
      const queued = result.steps.filter((step) => step.status === 'queued').length
      relay.metrics.admin('logout', queued > 0 ? 'queued' : 'already_queued')
      request.logFields = { outcome: 'global_logout_queued', identity: identityId, sids: result.sids.length, steps: result.steps.length, queued, revokeConsents }
      return await reply.code(202).send({
        identity_id: result.identityId,
        sids: result.sids,
        steps: result.steps.map(stepBody)
      })
    } catch (err) {
      relay.metrics.admin('logout', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/identities/:id/logout')

  app.get<{ Params: { id: string } }>('/admin/identities/:id/sessions', {
    onRequest: auth('sessions')
  }, async (request) => {
    try {
      const identityId = parseIdentityId(request.params.id)
      const sessions = await relay.identitySessions(identityId)
      relay.metrics.admin('sessions', 'listed')
      return {
        identity_id: identityId,
        sessions: sessions.map((session) => ({ sid: session.sid, expires_at: session.expiresAt }))
      }
    } catch (err) {
      relay.metrics.admin('sessions', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/identities/:id/sessions', 'GET')

  deadLetterRoutes(app, auth)
  revocationRoutes(app, auth)
}

/** A step as the API shows it: its kind, what it targets (in snake case), and whether it was queued now. */
function stepBody (step: GlobalLogoutStep): Record<string, string> {
  return { ...targetBody(step.target), status: step.status }
}

function targetBody (target: RevocationTarget): Record<string, string> {
  switch (target.kind) {
    case 'hydra-login-session':
      return { kind: target.kind, sid: target.sid }
    case 'kratos-sessions':
      return { kind: target.kind, identity_id: target.identityId }
    case 'hydra-consent-sessions':
      return { kind: target.kind, subject: target.subject }
  }
}

function failure (err: unknown): AdminOutcome {
  return isRelayError(err) && err.status === 400 ? 'invalid' : 'unavailable'
}
