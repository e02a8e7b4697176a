import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Clock } from './clock.js'
import type { Config } from './config.js'
import { createHttpServer } from './http/server.js'
import { createAuditLog } from './ops/audit-log.js'
import { createLogger } from './ops/logger.js'
import { createMetrics, type Metrics } from './ops/metrics.js'
import { createHydraAdmin, createKratosAdmin, type AdminClient, type HydraAdmin, type KratosAdmin } from './ory/admin.js'
import { AdminApiGuard, PROOF_REQUESTS, type AdminService } from './ory/admin-proof.js'
import { createOutboundFetch } from './ory/dispatcher.js'
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
  /** How often a failing admin URL proof is made again, and held revocations looked at (default 10 s). */
  adminProofRetryMs?: number
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
  const admin = { timeoutMs: config.upstreamTimeoutMs, proxy: config.proxy }
  const kratos = deps.kratos ?? createKratosAdmin({ ...admin, adminUrl: config.kratos.adminUrl, token: config.kratos.adminToken })
  const hydra = deps.hydra ?? createHydraAdmin({ ...admin, adminUrl: config.hydra.adminUrl, token: config.hydra.adminToken })
  const metrics = createMetrics(stores.queue.counts)

  // Each admin URL is proven to answer its admin API before revocations go there, and again while the
  // relay runs (a wrong prefix or the public port would answer every revocation with a 404).
  const guards = {
    kratos: adminGuard('kratos', config.kratos.adminUrl, kratos, { log, metrics, retryMs: deps.adminProofRetryMs }),
    hydra: adminGuard('hydra', config.hydra.adminUrl, hydra, { log, metrics, retryMs: deps.adminProofRetryMs })
  }
  const worker = new RevocationWorker({
    queue: stores.queue,
    execute: createRevoker({ kratos, hydra, guards }),
    log: log.child({ module: 'revocation-worker' }),
    ...config.revocation,
    ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
    clock,
    onOutcome: (outcome, job, status) => {
      metrics.revocation(outcome, job.target.kind, status)
      if (job.cause?.kind === 'operator-retry') metrics.operatorRetried(outcome, job.cause.via)
    },
    onRecord: createAuditLog(log)
  })
  const retention = new DeadLetterRetention({ queue: stores.queue, ...config.deadLetters, log: log.child({ module: 'dead-letters' }), clock })
  const issuerHttp = createOutboundFetch({ proxy: config.proxy })
  const verify = createLogoutTokenVerifier({
    ...config.oidc,
    keys: createIssuerKeys({ issuer: config.oidc.issuer, jwksUrl: config.oidc.jwksUrl, timeoutMs: config.upstreamTimeoutMs, fetch: deps.fetch ?? issuerHttp.fetch }),
    now: clock
  })
  const usecases = createUseCases({
    ...stores,
    verify,
    hydra,
    onEnqueued: () => worker.notify(),
    tokens: config.oidc,
    revocation: config.revocation,
    credentialChange: config.credentialChange,
    deadLetterRetention: config.deadLetters,
    clock
  })

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
    guards.kratos.stop()
    guards.hydra.stop()
    workerStopped = Promise.all([worker.stop(), retention.stop()]).then(() => {})
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onClose', async () => {
    await (workerStopped ?? Promise.all([worker.stop(), retention.stop()]))
    await Promise.all([kratos.close(), hydra.close(), issuerHttp.close()])
    await stores.close()
  })
  if (deps.startWorker !== false) {
    guards.kratos.start()
    guards.hydra.start()
    worker.start()
    retention.start()
  }
  return app
}

/** The guard of one admin URL: it proves the URL with the client's own GET, and reports to the metrics. */
function adminGuard (
  service: AdminService, adminUrl: string, client: AdminClient, { log, metrics, retryMs }: { log: Logger, metrics: Metrics, retryMs: number | undefined }
): AdminApiGuard {
  return new AdminApiGuard({
    service,
    adminUrl,
    log: log.child({ module: 'admin-proof' }),
    ...(retryMs !== undefined ? { failingIntervalMs: retryMs } : {}),
    probe: async () => {
      const answer = await client.get(PROOF_REQUESTS[service].path)
      const location = answer.headers['location']
      return { status: answer.status, contentType: answer.headers['content-type'], body: answer.body, location: Array.isArray(location) ? location[0] : location }
    },
    onChange: (proof) => metrics.adminApiProof(service, proof)
  })
}
