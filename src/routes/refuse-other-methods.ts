import type { FastifyInstance } from 'fastify'
import { RelayError } from '../errors.js'

/** Answers 405 with `Allow` to any other method on a POST-only route, instead of 404. */
export function refuseOtherMethods (scope: FastifyInstance, url: string): void {
  scope.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url,
    handler: async (_request, reply) => {
      reply.header('allow', 'POST')
      throw new RelayError('ERR_METHOD_NOT_ALLOWED', `${url} accepts POST only`)
    }
  })
}
