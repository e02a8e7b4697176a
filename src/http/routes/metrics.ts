import type { FastifyInstance } from 'fastify'

/** `GET /metrics`: Prometheus text format. */
export async function metricsRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  app.get('/metrics', async (_request, reply) => {
    const body = await relay.metrics.registry.metrics()
    return await reply.type(relay.metrics.registry.contentType).send(body)
  })
}
