import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

/**
 * The load generator, run as its own process so that it never shares a core's event loop with the
 * server it measures. Reads a job from the JSON file named on the command line, prints the result.
 */
interface LoadJob {
  url: string
  method: 'POST' | 'DELETE' | 'GET'
  headers: Record<string, string>
  /** Bodies sent in order, one per request (cycled when `amount` exceeds them). */
  bodies?: string[]
  /** Paths sent in order, one per request, instead of bodies. */
  paths?: string[]
  connections: number
  amount?: number
  duration?: number
}

const job = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadJob
let next = 0
const result = await autocannon({
  url: job.url,
  connections: job.connections,
  ...(job.amount !== undefined ? { amount: job.amount } : { duration: job.duration ?? 5 }),
  requests: [{
    method: job.method,
    headers: job.headers,
    setupRequest: (request) => {
      const i = next++
      const body = job.bodies?.[i % job.bodies.length]
      const path = job.paths?.[i % job.paths.length]
      return { ...request, ...(body !== undefined ? { body } : {}), ...(path !== undefined ? { path } : {}) }
    }
  }]
})
process.stdout.write(JSON.stringify({
  requests: result.requests.total,
  seconds: result.duration,
  rps: result.requests.total / result.duration,
  p50: result.latency.p50,
  p99: result.latency.p99,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  statusCodes: result.statusCodeStats
}))
