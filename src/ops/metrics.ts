import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { TokenRejection } from '../errors.js'
import type { AdminApiProof, AdminService } from '../ory/admin-proof.js'
import type { QueueCounts } from '../store/revocation-queue.js'
import type { JobOutcome } from '../revocation/worker.js'

export type LogoutOutcome = 'queued' | 'duplicate' | 'unresolved' | 'already_handled' | 'rejected' | 'unavailable'
export type HookOutcome = 'indexed' | 'late_logout' | 'conflict' | 'invalid' | 'unauthorized' | 'not_configured' | 'rate_limited' | 'unknown_challenge' | 'unavailable'
/**
 * What the admin API did: `queued` (something new queued), `already_queued` (a repeat), `listed`,
 * `retried` or `dropped` (a dead letter), or why it refused (`not_found`: no such dead letter).
 */
export type AdminOutcome = 'queued' | 'already_queued' | 'listed' | 'retried' | 'dropped' | 'not_found' | 'invalid' | 'unauthorized' | 'not_configured' | 'rate_limited' | 'unavailable'
export type AdminAction = 'logout' | 'sessions' | 'dead_letters' | 'retry_dead_letter' | 'drop_dead_letter' | 'revocations'
/**
 * What the credentials hook did: `queued` (something new queued), `already_queued` (a repeat),
 * `nothing_to_do` (no sid indexed, consents not revoked), or why it refused.
 */
export type CredentialsOutcome = 'queued' | 'already_queued' | 'nothing_to_do' | 'invalid' | 'unauthorized' | 'not_configured' | 'rate_limited' | 'unavailable'

/**
 * The relay's Prometheus metrics, in a registry of its own (never the global one), so that each
 * app instance counts for itself.
 */
export function createMetrics (queueCounts: () => Promise<QueueCounts>) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'logout_relay_' })

  const logoutTokens = new Counter({
    name: 'logout_relay_logout_tokens_total',
    help: 'Back-channel logout requests by outcome, and by rejection reason when rejected.',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry]
  })
  const revocations = new Counter({
    name: 'logout_relay_revocations_total',
    help: 'Revocation attempts by outcome (succeeded, retried, held, dead_lettered), job kind, and the upstream status (204, 404 for nothing left to revoke; empty without an answer).',
    labelNames: ['outcome', 'kind', 'status'] as const,
    registers: [registry]
  })
  const adminApiProven = new Gauge({
    name: 'logout_relay_admin_api_proven',
    help: '1 while the admin URL of the service (kratos, hydra) is proven to answer its admin API; 0 while it answers something else (a wrong URL or token: revocations there wait) or nothing.',
    labelNames: ['service'] as const,
    registers: [registry]
  })
  const hookCalls = new Counter({
    name: 'logout_relay_login_hook_calls_total',
    help: 'Login hook calls by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  const credentialsChanged = new Counter({
    name: 'logout_relay_credentials_changed_total',
    help: 'Credentials hook calls by flow (settings, recovery; empty when refused before a flow was known) and outcome.',
    labelNames: ['flow', 'outcome'] as const,
    registers: [registry]
  })
  const adminCalls = new Counter({
    name: 'logout_relay_admin_calls_total',
    help: 'Admin API calls by action (logout, sessions, dead_letters, retry_dead_letter, drop_dead_letter, revocations) and outcome.',
    labelNames: ['action', 'outcome'] as const,
    registers: [registry]
  })
  const requestDuration = new Histogram({
    name: 'logout_relay_http_request_duration_seconds',
    help: 'HTTP request latency by route and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry]
  })
  // The queue is read once per scrape: prom-client collects every metric of a scrape at once, in the
  // same tick, so the three gauges below share one read. A store that is down shows as store_up 0.
  let snapshot: Promise<QueueCounts | undefined> | undefined
  const readQueue = async (): Promise<QueueCounts | undefined> => {
    snapshot ??= queueCounts().catch(() => undefined).finally(() => { snapshot = undefined })
    return await snapshot
  }
  registry.registerMetric(new Gauge({
    name: 'logout_relay_store_up',
    help: '1 when the revocation queue could be read at this scrape, 0 when the store is down.',
    registers: [],
    async collect () {
      this.set(await readQueue() === undefined ? 0 : 1)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'logout_relay_queue_depth',
    help: 'Revocation jobs in the queue: waiting (due now or later) and active (claimed by a worker).',
    labelNames: ['state'] as const,
    registers: [],
    async collect () {
      const counts = await readQueue()
      if (counts === undefined) return
      this.set({ state: 'waiting' }, counts.waiting)
      this.set({ state: 'active' }, counts.active)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'logout_relay_dead_letters',
    help: 'Revocation jobs given up on, kept in the dead-letter set. Alert when above 0.',
    registers: [],
    async collect () {
      const counts = await readQueue()
      if (counts !== undefined) this.set(counts.dead)
    }
  }))
  const deadLettered = new Counter({
    name: 'logout_relay_dead_lettered_total',
    help: 'Revocation jobs moved to the dead letters by this process.',
    registers: [registry]
  })
  const operatorRetried = new Counter({
    name: 'logout_relay_operator_retried_revocations_total',
    help: 'Attempts at jobs an operator sent back from the dead letters, by where the retry came from (cli, admin-api) and outcome (succeeded, retried, dead_lettered).',
    labelNames: ['via', 'outcome'] as const,
    registers: [registry]
  })

  return {
    registry,
    logout (outcome: LogoutOutcome, reason: TokenRejection | 'request' | '' = '') {
      logoutTokens.inc({ outcome, reason })
    },
    revocation (outcome: JobOutcome, kind: string, status: number | undefined) {
      revocations.inc({ outcome, kind, status: status === undefined ? '' : String(status) })
      if (outcome === 'dead_lettered') deadLettered.inc()
    },
    adminApiProof (service: AdminService, proof: AdminApiProof) {
      adminApiProven.set({ service }, proof.state === 'proven' ? 1 : 0)
    },
    /** An attempt at a job an operator retried, from the command line or the admin API. */
    operatorRetried (outcome: JobOutcome, via: 'cli' | 'admin-api') {
      operatorRetried.inc({ via, outcome })
    },
    hook (outcome: HookOutcome) {
      hookCalls.inc({ outcome })
    },
    credentialsChanged (flow: string, outcome: CredentialsOutcome) {
      credentialsChanged.inc({ flow, outcome })
    },
    admin (action: AdminAction, outcome: AdminOutcome) {
      adminCalls.inc({ action, outcome })
    },
    request (method: string, route: string, statusCode: number, seconds: number) {
      requestDuration.observe({ method, route, status_code: String(statusCode) }, seconds)
    }
  }
}

export type Metrics = ReturnType<typeof createMetrics>
