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

export interface LoadResult {
  requests: number
  /** CPU time (user + system) the load generator itself spent on the run. */
  cpuSeconds: number
  seconds: number
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  timeouts: number
  statusCodes: Record<string, { count: number }>
}

const job = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadJob
const result = await run(job)
process.stdout.write(JSON.stringify(result))

async function run (job: LoadJob): Promise<LoadResult> {
  let next = 0
  const options: autocannon.Options = {
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
  }
  // autocannon reports its duration at whole-second ticks: a run of a fixed amount would be rounded up
  // to the next second. The rate is taken from the start to the last response instead.
  const began = performance.now()
  const cpuBefore = process.cpuUsage()
  let lastResponse = began
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err, done) => { if (err === null || err === undefined) resolve(done); else reject(err) })
    instance.on('response', () => { lastResponse = performance.now() })
  })
  const seconds = (lastResponse - began) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  return {
    requests: result.requests.total,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    seconds,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, { count: count ?? 0 }]))
  }
}
