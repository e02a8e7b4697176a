import type { FastifyError, FastifyInstance } from 'fastify'
import { RelayError, isRelayError } from '../errors.js'

/**
 * Answers every error in one shape, `{"error", "error_description"[, "field"]}`: a `RelayError` with
 * its own status and message, Fastify's own 4xx (bad JSON, too large, wrong content type) in the
 * relay's words, anything else as a 500 whose message is never shown. 5xx are logged with their cause.
 */
export function installErrorHandler (app: FastifyInstance): void {
  app.setErrorHandler(async (err: FastifyError | RelayError, request, reply) => {
    const relayError = isRelayError(err) ? err : fromFrameworkError(err)
    if (relayError.status >= 500) {
      const cause = (relayError.cause ?? (relayError === err ? undefined : err)) as Error | undefined
      const level = relayError.code === 'ERR_NOT_CONFIGURED' ? 'warn' : 'error'
      request.log[level]({ code: relayError.code, cause: cause?.message }, relayError.message)
    }
    if (relayError.retryAfter !== undefined) reply.header('retry-after', String(relayError.retryAfter))
    // RFC 6750 §3: a 401 names the scheme the route expects.
    if (relayError.code === 'ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="logout-relay"')
    return await reply.code(relayError.status).send({
      error: relayError.error,
      error_description: relayError.expose ? relayError.message : 'internal error',
      ...(relayError.field !== undefined ? { field: relayError.field } : {})
    })
  })
  app.setNotFoundHandler(async (request) => {
    throw new RelayError('ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`)
  })
}

/** Fastify's own 4xx (bad JSON, body too large, wrong content type) in the relay's error shape. */
function fromFrameworkError (err: FastifyError): RelayError {
  const status = err.statusCode ?? 500
  if (status === 413) return new RelayError('ERR_BODY_TOO_LARGE', 'the body is too large')
  if (status === 415) return new RelayError('ERR_UNSUPPORTED_MEDIA_TYPE', err.message)
  if (status >= 400 && status < 500) return new RelayError('ERR_REQUEST_INVALID', err.message)
  return new RelayError('ERR_INTERNAL', 'internal error', { cause: err })
}
