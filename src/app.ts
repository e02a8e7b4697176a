import underPressure from '@fastify/under-pressure'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { RelayError, isRelayError } from './errors.js'
import type { Clock } from './store/expiring-map.js'
import { knownSessions, logOutEverywhere, type GlobalLogoutInput, type GlobalLogoutResult, type KnownSession } from './usecases/global-logout.js'
import { createIssuerKeys } from './token/issuer-keys.js'
import { createLogger } from './ops/logger.js'
import { indexLogin, type LoginHookInput, type LoginHookResult } from './usecases/login-hook.js'
import { acceptLogout, type LogoutResult } from './usecases/logout.js'
import { createLogoutTokenVerifier } from './token/logout-token.js'
import { createMetrics, type Metrics } from './ops/metrics.js'
import { createHydraAdmin, createKratosAdmin, type HydraAdmin, type KratosAdmin } from './ory/admin.js'
import { FixedWindowLimiter } from './http/rate-limit.js'
import { Keyspace, createRedisClient, waitForRedis, type RedisClient } from './store/redis.js'
import { createMemoryRevocationQueue, createRedisRevocationQueue, type RevocationQueue } from './store/revocation-queue.js'
import { RevocationWorker } from './revocation/worker.js'
import { createRevoker } from './revocation/revoker.js'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex } from './store/session-index.js'
import { adminRoutes } from './http/routes/admin.js'
import { backchannelLogoutRoutes } from './http/routes/backchannel-logout.js'
import { healthRoutes } from './http/routes/health.js'
import { loginHookRoutes } from './http/routes/login-hook.js'
import { metricsRoutes } from './http/routes/metrics.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** What a route wants on the request's log line (an outcome, an identity id); never a secret. */
    logFields: Record<string, unknown> | null
  }
}

/** Everything the routes use; built once per app from the configuration. */
export interface Relay {
  config: Config
  metrics: Metrics
  logout: (token: string) => Promise<LogoutResult>
  indexLogin: (input: LoginHookInput) => Promise<LoginHookResult>
  /** Per-replica rate limits of the authenticated routes. */
  limits: { authFailures: FixedWindowLimiter, hookCalls: FixedWindowLimiter }
  /** Logs an identity out everywhere: queues the revocation of each of its sids at Hydra, and of its Kratos sessions. */
  logOutEverywhere: (input: GlobalLogoutInput) => Promise<GlobalLogoutResult>
  /** The sids the index knows for an identity. */
  identitySessions: (identityId: string) => Promise<KnownSession[]>
  /** Names each dependency that is not ready; empty when the relay can serve. */
  readiness: () => Promise<Record<string, string>>
  stores: Stores
  worker: RevocationWorker
}

export interface Stores {
  index: SessionIndex
  queue: RevocationQueue
  /** Throws when the store cannot be reached. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

/** Replaceable parts, for tests and embedding; the defaults come from the configuration. */
export interface AppDeps {
  logger?: Logger
  clock?: Clock
  fetch?: typeof fetch
  kratos?: KratosAdmin
  hydra?: HydraAdmin
  /** Start the revocation worker (default true). */
  startWorker?: boolean
  /** Worker poll interval, ms (default 1000). */
  pollIntervalMs?: number
  /** How long to wait for Redis before serving anyway, not ready (default 5000 ms). */
  redisConnectTimeoutMs?: number
}

/**
 * Builds the relay: its stores, the token verifier, the Ory admin clients, the revocation worker and
 * the HTTP routes. Never listens; `app.close()` stops the worker (jobs in flight are settled, queued
 * ones stay in the store) and closes the store.
 */
export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const log = deps.logger ?? createLogger(config.logLevel)
  const clock = deps.clock ?? Date.now
  const stores = await openStores(config, log, clock, deps.redisConnectTimeoutMs ?? 5000)

  const verify = createLogoutTokenVerifier({
    ...config.oidc,
    keys: createIssuerKeys({ issuer: config.oidc.issuer, jwksUrl: config.oidc.jwksUrl, timeoutMs: config.upstreamTimeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
    now: clock
  })
  const admin = { timeoutMs: config.upstreamTimeoutMs }
  const kratos = deps.kratos ?? createKratosAdmin({ ...admin, adminUrl: config.kratos.adminUrl, token: config.kratos.adminToken })
  const hydra = deps.hydra ?? createHydraAdmin({ ...admin, adminUrl: config.hydra.adminUrl, token: config.hydra.adminToken })
  const metrics = createMetrics(stores.queue.counts)

  const worker = new RevocationWorker({
    queue: stores.queue,
    execute: createRevoker(kratos, hydra),
    log: log.child({ module: 'revocation-worker' }),
    ...config.revocation,
    ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
    clock,
    onOutcome: (outcome, job) => metrics.revocation(outcome, job.target.kind)
  })
  const onEnqueued = (): void => worker.notify()
  // Tokens older than this are refused by their iat, so their jti need not be remembered longer.
  const rememberSeconds = config.oidc.maxAgeSeconds + 2 * config.oidc.clockToleranceSeconds
  const logoutDeps = { verify, ...stores, onEnqueued, rememberSeconds }
  const loginDeps = { ...stores, hydra, onEnqueued, rememberSeconds }
  const globalLogoutDeps = { ...stores, onEnqueued }

  let closing = false
  const relay: Relay = {
    config,
    metrics,
    stores,
    worker,
    logout: (token) => acceptLogout(logoutDeps, token),
    indexLogin: (input) => indexLogin(loginDeps, input),
    limits: {
      authFailures: new FixedWindowLimiter(config.authFailures.limit, config.authFailures.windowSeconds * 1000, clock),
      hookCalls: new FixedWindowLimiter(config.loginHook.rateLimit, config.loginHook.rateWindowSeconds * 1000, clock)
    },
    logOutEverywhere: (input) => logOutEverywhere(globalLogoutDeps, input),
    identitySessions: (identityId) => knownSessions(stores, identityId),
    async readiness () {
      const problems: Record<string, string> = {}
      if (closing) problems['shutdown'] = 'the relay is shutting down'
      try {
        await stores.ping()
      } catch {
        problems['redis'] = 'redis does not answer'
      }
      return problems
    }
  }

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One line per request, written by the onResponse hook below, with the path only (no query).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.logoutBodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    trustProxy: typeof config.http.trustProxy === 'number' ? trustHops(config.http.trustProxy) : config.http.trustProxy,
    routerOptions: { ignoreTrailingSlash: true }
  })

  if (config.http.maxEventLoopDelayMs > 0) {
    // Load shedding: a saturated event loop answers 503 at once rather than letting requests time
    // out. Health and metrics are spared, so that an overloaded replica is not mistaken for a dead one;
    // so is the first second after startup, whose first sample measures loading the code, not load.
    let readySince = Number.POSITIVE_INFINITY
    app.addHook('onReady', async () => { readySince = Date.now() })
    await app.register(underPressure, {
      maxEventLoopDelay: config.http.maxEventLoopDelayMs,
      sampleInterval: 100,
      pressureHandler: async (request) => {
        if (request.url.startsWith('/health/') || request.url === '/metrics' || Date.now() - readySince < 1000) return
        throw new RelayError('ERR_OVERLOADED', 'the relay is overloaded; retry later')
      }
    })
  }

  // One log line per request, with what the route decided (request.logFields) and the path only:
  // a query string could carry a token.
  app.decorateRequest('logFields', null)
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
    request.log.info({ method: request.method, url: route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime), ...request.logFields }, 'request completed')
  })
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

  await app.register(healthRoutes, { relay })
  await app.register(metricsRoutes, { relay })
  await app.register(backchannelLogoutRoutes, { relay })
  await app.register(loginHookRoutes, { relay })
  await app.register(adminRoutes, { relay })

  // Shutdown: readiness fails at once, the worker claims nothing more and settles its jobs in flight,
  // responses tell keep-alive clients to go, and the store closes once the last request is answered.
  let workerStopped: Promise<void> | undefined
  app.addHook('preClose', async () => {
    closing = true
    workerStopped = worker.stop()
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onClose', async () => {
    await (workerStopped ?? worker.stop())
    kratos.close()
    hydra.close()
    await stores.close()
  })
  if (deps.startWorker !== false) worker.start()
  return app
}

/** Trusts the nearest `hops` proxies' X-Forwarded-For entries (TRUST_PROXY=<n>). */
function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/** Fastify's own 4xx (bad JSON, body too large, wrong content type) in the relay's error shape. */
function fromFrameworkError (err: FastifyError): RelayError {
  const status = err.statusCode ?? 500
  if (status === 413) return new RelayError('ERR_BODY_TOO_LARGE', 'the body is too large')
  if (status === 415) return new RelayError('ERR_UNSUPPORTED_MEDIA_TYPE', err.message)
  if (status >= 400 && status < 500) return new RelayError('ERR_REQUEST_INVALID', err.message)
  return new RelayError('ERR_INTERNAL', 'internal error', { cause: err })
}

async function openStores (config: Config, log: Logger, clock: Clock, connectTimeoutMs: number): Promise<Stores> {
  if (config.redis.url === undefined && config.redis.clusterNodes.length === 0) {
    return {
      index: createMemorySessionIndex({ ...config.index, clock }),
      queue: createMemoryRevocationQueue(clock),
      ping: async () => {},
      close: async () => {}
    }
  }
  const redis: RedisClient = createRedisClient(config.redis, log.child({ module: 'redis' }))
  if (!await waitForRedis(redis, connectTimeoutMs)) {
    log.warn('redis is not reachable yet; serving 503 until it is')
  }
  const keys = new Keyspace(config.redis.keyPrefix)
  return {
    index: createRedisSessionIndex(redis, keys, { ...config.index, clock }),
    queue: createRedisRevocationQueue(redis, keys, clock),
    ping: async () => { await redis.ping() },
    close: async () => {
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    }
  }
}
