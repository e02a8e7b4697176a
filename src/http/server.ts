import underPressure from '@fastify/under-pressure'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { RelayError } from '../errors.js'
import { installErrorHandler } from './error-handler.js'
import type { Relay } from './relay.js'
import { adminRoutes } from './routes/admin.js'
import { backchannelLogoutRoutes } from './routes/backchannel-logout.js'
import { credentialsHookRoutes } from './routes/credentials-hook.js'
import { healthRoutes } from './routes/health.js'
import { loginHookRoutes } from './routes/login-hook.js'
import { metricsRoutes } from './routes/metrics.js'

/**
 * The relay's HTTP side: Fastify with its routes, one error shape, one log line per request, and
 * load shedding. The routes find what they use on `app.relay`. Never listens.
 */
export async function createHttpServer (relay: Relay, log: Logger): Promise<FastifyInstance> {
  const http = relay.config.http
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One line per request, written by the onResponse hook below, with the path only (no query).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: http.logoutBodyLimit,
    // A request whose body has not fully arrived within REQUEST_TIMEOUT is answered 408 and closed (a
    // client that sends a byte every few seconds holds nothing for long). Node checks every connection
    // at this interval, so the interval bounds how late past the timeout that happens.
    requestTimeout: http.requestTimeoutMs,
    http: {
      requestTimeout: http.requestTimeoutMs,
      headersTimeout: http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(http.requestTimeoutMs / 4))
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    trustProxy: typeof http.trustProxy === 'number' ? trustHops(http.trustProxy) : http.trustProxy,
    routerOptions: { ignoreTrailingSlash: true }
  })
  app.decorate('relay', relay)

  if (http.maxEventLoopDelayMs > 0) await shedLoad(app, http)

  // One log line per request, with what the route decided (request.logFields) and the path only:
  // a query string could carry a token.
  app.decorateRequest('logFields', null)
  app.decorateRequest('apiKeyFingerprint', null)
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    relay.metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
    request.log.info({ method: request.method, url: route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime), ...request.logFields }, 'request completed')
  })
  installErrorHandler(app)

  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(backchannelLogoutRoutes)
  await app.register(loginHookRoutes)
  await app.register(credentialsHookRoutes)
  await app.register(adminRoutes)
  return app
}

/**
 * Load shedding: a saturated event loop answers 503 at once rather than letting requests time out.
 * Health and metrics are spared, so that an overloaded replica is not mistaken for a dead one; so is
 * the first second after startup, whose first sample measures loading the code, not load.
 */
async function shedLoad (app: FastifyInstance, http: Config['http']): Promise<void> {
  let readySince = Number.POSITIVE_INFINITY
  app.addHook('onReady', async () => { readySince = Date.now() })
  await app.register(underPressure, {
    maxEventLoopDelay: http.maxEventLoopDelayMs,
    sampleInterval: 100,
    pressureHandler: async (request) => {
      if (request.url.startsWith('/health/') || request.url === '/metrics' || Date.now() - readySince < 1000) return
      throw new RelayError('ERR_OVERLOADED', 'the relay is overloaded; retry later')
    }
  })
}

/** Trusts the nearest `hops` proxies' X-Forwarded-For entries (TRUST_PROXY=<n>). */
function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}
