import type { FastifyInstance, HTTPMethods } from 'fastify'
import { RelayError } from '../errors.js'

const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

/** Answers 405 with `Allow` to any other method on a single-method route, instead of 404. */
export function refuseOtherMethods (scope: FastifyInstance, url: string, allow: 'GET' | 'POST' | 'DELETE' = 'POST'): void {
  scope.route({
    method: METHODS.filter((method) => method !== allow),
    url,
    handler: async (_request, reply) => {
      reply.header('allow', allow === 'GET' ? 'GET, HEAD' : allow)
      throw new RelayError('ERR_METHOD_NOT_ALLOWED', `${url} accepts ${allow} only`)
    }
  })
}
