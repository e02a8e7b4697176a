import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Clock } from './clock.js'
import type { Config } from './config.js'
import { createHttpServer } from './http/server.js'
import { createAuditLog } from './ops/audit-log.js'
import { createLogger } from './ops/logger.js'
import { createMetrics } from './ops/metrics.js'
import { createHydraAdmin, createKratosAdmin, type HydraAdmin, type KratosAdmin } from './ory/admin.js'
import { DeadLetterRetention } from './revocation/retention.js'
import { createRevoker } from './revocation/revoker.js'
import { RevocationWorker } from './revocation/worker.js'
import { openStores } from './store/stores.js'
import { createIssuerKeys } from './token/issuer-keys.js'
import { createLogoutTokenVerifier } from './token/logout-token.js'
import { createUseCases } from './usecases/index.js'

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
 * Builds the relay: its stores, the token verifier, the Ory admin clients, the revocation worker, the
 * use cases and the HTTP server. Never listens; `app.close()` stops the worker (jobs in flight are
 * settled, queued ones stay in the store), then closes the Ory clients and the store.
 */
export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const log = deps.logger ?? createLogger(config.logLevel)
  const clock = deps.clock ?? Date.now
  const stores = await openStores({ redis: config.redis, index: config.index, audit: config.audit, log, clock, connectTimeoutMs: deps.redisConnectTimeoutMs ?? 5000 })
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
    onOutcome: (outcome, job) => {
      metrics.revocation(outcome, job.target.kind)
      if (job.cause?.kind === 'operator-retry') metrics.operatorRetried(outcome, job.cause.via)
    },
    onRecord: createAuditLog(log)
  })
  const retention = new DeadLetterRetention({ queue: stores.queue, ...config.deadLetters, log: log.child({ module: 'dead-letters' }), clock })
  const verify = createLogoutTokenVerifier({
    ...config.oidc,
    keys: createIssuerKeys({ issuer: config.oidc.issuer, jwksUrl: config.oidc.jwksUrl, timeoutMs: config.upstreamTimeoutMs, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
    now: clock
  })
  const usecases = createUseCases({ ...stores, verify, hydra, onEnqueued: () => worker.notify(), tokens: config.oidc, deadLetterRetention: config.deadLetters, clock })

  let closing = false
  const app = await createHttpServer({
    ...usecases,
    config,
    metrics,
    async readiness () {
      const problems: Record<string, string> = {}
      if (closing) problems['shutdown'] = 'the relay is shutting down'
      await stores.ping().catch(() => { problems['redis'] = 'redis does not answer' })
      return problems
    }
  }, log)

  // Shutdown: readiness fails at once, the worker claims nothing more and settles its jobs in flight,
  // responses tell keep-alive clients to go, and the store closes once the last request is answered.
  let workerStopped: Promise<void> | undefined
  app.addHook('preClose', async () => {
    closing = true
    workerStopped = Promise.all([worker.stop(), retention.stop()]).then(() => {})
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onClose', async () => {
    await (workerStopped ?? Promise.all([worker.stop(), retention.stop()]))
    kratos.close()
    hydra.close()
    await stores.close()
  })
  if (deps.startWorker !== false) {
    worker.start()
    retention.start()
  }
  return app
}
