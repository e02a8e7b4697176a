import type { FastifyInstance } from 'fastify'
import { isRelayError } from '../../errors.js'
import type { AdminAction, AdminOutcome } from '../../ops/metrics.js'
import { jobIdentity } from '../../store/revocation-queue.js'
import { causeView } from '../../usecases/audit.js'
import { DEFAULT_DEAD_LETTER_LIMIT, MAX_DEAD_LETTER_LIMIT, parseDeadLetterCursor, parseLimit } from '../../usecases/dead-letters.js'
import type { bearerAuth } from '../bearer-auth.js'
import { refuseOtherMethods } from '../refuse-other-methods.js'

/** The admin API's guard for one action (its refusals are counted under that action). */
export type AdminGuard = (action: AdminAction) => ReturnType<typeof bearerAuth>

/**
 * The dead letters through the admin API (registered by `adminRoutes`, with its keys and its counter
 * of failed attempts):
 *
 * - `GET /admin/dead-letters?limit=&cursor=`: a page, oldest buried first, each with when its
 *   retention removes it; `next_cursor` continues.
 * - `POST /admin/dead-letters/{id}/retry`: back to the queue (202), recorded as an operator's retry
 *   by the key's fingerprint.
 * - `DELETE /admin/dead-letters/{id}`: removed for good (204); the request's log line says what went.
 *
 * An unknown id is a 404 `not_found`.
 */
export function deadLetterRoutes (app: FastifyInstance, auth: AdminGuard): void {
  const { relay } = app

  app.get<{ Querystring: { limit?: unknown, cursor?: unknown } }>('/admin/dead-letters', {
    onRequest: auth('dead_letters')
  }, async (request) => {
    try {
      const limit = parseLimit(request.query.limit, DEFAULT_DEAD_LETTER_LIMIT, MAX_DEAD_LETTER_LIMIT)
      const cursor = parseDeadLetterCursor(request.query.cursor)
      const list = await relay.deadLetters({ limit, ...(cursor !== undefined ? { cursor } : {}) })
      relay.metrics.admin('dead_letters', 'listed')
      request.logFields = { outcome: 'dead_letters_listed', count: list.dead_letters.length, total: list.total }
      return list
    } catch (err) {
      relay.metrics.admin('dead_letters', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/dead-letters', 'GET')

  app.post<{ Params: { id: string } }>('/admin/dead-letters/:id/retry', {
    onRequest: auth('retry_dead_letter')
  }, async (request, reply) => {
    try {
      const keyFingerprint = request.apiKeyFingerprint ?? ''
      const job = await relay.retryDeadLetter(request.params.id, { kind: 'operator-retry', via: 'admin-api', keyFingerprint })
      relay.metrics.admin('retry_dead_letter', 'retried')
      const identityId = jobIdentity(job)
      request.logFields = { outcome: 'dead_letter_retried', job: job.id, kind: job.target.kind, identity: identityId, sid: job.sid, keyFingerprint }
      return await reply.code(202).send({
        id: job.id,
        status: 'queued',
        kind: job.target.kind,
        ...(identityId !== undefined ? { identity_id: identityId } : {}),
        ...(job.sid !== undefined ? { sid: job.sid } : {}),
        cause: causeView(job.cause)
      })
    } catch (err) {
      relay.metrics.admin('retry_dead_letter', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/dead-letters/:id/retry')

  app.delete<{ Params: { id: string } }>('/admin/dead-letters/:id', {
    onRequest: auth('drop_dead_letter')
  }, async (request, reply) => {
    try {
      const letter = await relay.dropDeadLetter(request.params.id)
      relay.metrics.admin('drop_dead_letter', 'dropped')
      // A drop leaves no audit record: the request's log line is its trace.
      request.logFields = {
        outcome: 'dead_letter_dropped',
        job: letter.id,
        kind: letter.target.kind,
        identity: jobIdentity(letter),
        sid: letter.sid,
        lastError: letter.lastError,
        keyFingerprint: request.apiKeyFingerprint
      }
      return await reply.code(204).send()
    } catch (err) {
      relay.metrics.admin('drop_dead_letter', failure(err))
      throw err
    }
  })
  refuseOtherMethods(app, '/admin/dead-letters/:id', 'DELETE')
}

/** The outcome label of a failed call. */
export function failure (err: unknown): AdminOutcome {
  if (!isRelayError(err)) return 'unavailable'
  if (err.code === 'ERR_DEAD_LETTER_NOT_FOUND') return 'not_found'
  return err.status === 400 ? 'invalid' : 'unavailable'
}
