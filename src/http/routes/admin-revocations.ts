import type { FastifyInstance } from 'fastify'
import { DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT } from '../../usecases/audit.js'
import { parseLimit } from '../../usecases/dead-letters.js'
import { parseIdentityId } from '../../usecases/global-logout.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'
import { failure, type AdminGuard } from './admin-dead-letters.js'

/**
 * `GET /admin/identities/{id}/revocations?limit=`: the identity's finished revocations from the audit
 * trail, newest first (registered by `adminRoutes`, with its keys).
 */
export function revocationRoutes (app: FastifyInstance, auth: AdminGuard): void {
  const { relay } = app
  app.get<{ Params: { id: string }, Querystring: { limit?: unknown } }>('/admin/identities/:id/revocations', {
    onRequest: auth('revocations')
  }, async (request) => {
    try {
      const identityId = parseIdentityId(request.params.id)
      const limit = parseLimit(request.query.limit, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT)
      const revocations = await relay.revocationsOf(identityId, limit)
      relay.metrics.admin('revocations', 'listed')
      request.logFields = { outcome: 'revocations_listed', identity: identityId, count: revocations.length }
      return { identity_id: identityId, revocations }
    } catch (err) {
      relay.metrics.admin('revocations', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/identities/:id/revocations', 'GET')
}
