import type { FastifyInstance } from 'fastify'

/**
 * Ory's health convention: `/health/alive` answers while the process serves; `/health/ready` only
 * when Redis answers and the relay is not shutting down.
 */
export async function healthRoutes (app: FastifyInstance): Promise<void> {
  const { relay } = app
  app.get('/health/alive', async () => ({ status: 'ok' }))
  app.get('/health/ready', async (_request, reply) => {
    const errors = await relay.readiness()
    if (Object.keys(errors).length > 0) return await reply.code(503).send({ errors })
    return { status: 'ok' }
  })
}
