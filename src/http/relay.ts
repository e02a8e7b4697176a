import type { Config } from '../config.js'
import type { Metrics } from '../ops/metrics.js'
import type { UseCases } from '../usecases/index.js'

/**
 * What the routes use, attached to the Fastify instance as `app.relay` (a decoration, as fastify's
 * demo application attaches its repositories), so that no route imports the app that registers it.
 */
export interface Relay extends UseCases {
  config: Pick<Config, 'http' | 'loginHook' | 'adminApi' | 'authFailures'>
  metrics: Metrics
  /** Names each dependency that is not ready; empty when the relay can serve. */
  readiness: () => Promise<Record<string, string>>
}

declare module 'fastify' {
  interface FastifyInstance {
    relay: Relay
  }
  interface FastifyRequest {
    /** What a route wants on the request's log line (an outcome, an identity id); never a secret. */
    logFields: Record<string, unknown> | null
    /** The fingerprint of the API key an authenticated route accepted; null before or without one. */
    apiKeyFingerprint: string | null
  }
}
