import type { FastifyInstance } from 'fastify'
import type { Relay } from '../../app.js'

/** `GET /metrics`: Prometheus text format. */
export async function metricsRoutes (app: FastifyInstance, { relay }: { relay: Relay }): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    const body = await relay.metrics.registry.metrics()
    return await reply.type(relay.metrics.registry.contentType).send(body)
  })
}
