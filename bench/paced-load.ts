import { readFileSync } from 'node:fs'
import { Pool } from 'undici'

/**
 * The time-to-revocation load: posts one body per request and records, for each, when it was sent
 * and answered (µs of the monotonic clock every process of the machine shares, so that the Kratos
 * double's arrival times compare). Open loop at `rate` requests per second — a request leaves on
 * schedule whether or not the earlier ones were answered, as Hydra's logouts arrive — or, without a
 * rate, closed loop on `connections` connections (each sends its next request once answered: the
 * server's saturation). Reads a job from the JSON file named on the command line, prints the result.
 */
interface PacedJob {
  origin: string
  path: string
  headers: Record<string, string>
  bodies: string[]
  /** What each body is about (a sid or an identity), to match with the Kratos double's arrivals. */
  keys: string[]
  connections: number
  rate?: number
}

export interface PacedSend { key: string, sentUs: number, answeredUs: number, status: number }
export interface PacedResult { sends: PacedSend[], seconds: number, cpuSeconds: number }

const now = (): number => Number(process.hrtime.bigint() / 1000n)
const job = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as PacedJob
const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1 })
const sends: PacedSend[] = new Array(job.bodies.length)
const cpuBefore = process.cpuUsage()
const began = now()

async function send (i: number): Promise<void> {
  const sentUs = now()
  let status = 0
  try {
    const answer = await pool.request({ method: 'POST', path: job.path, headers: job.headers, body: job.bodies[i] ?? '' })
    status = answer.statusCode
    await answer.body.dump()
  } catch {
    status = -1
  }
  sends[i] = { key: job.keys[i] ?? '', sentUs, answeredUs: now(), status }
}

if (job.rate !== undefined) {
  const intervalUs = 1e6 / job.rate
  const inFlight: Array<Promise<void>> = []
  for (let i = 0; i < job.bodies.length; i++) {
    // Sleep until this request's slot; a late timer sends the overdue ones at once, keeping the schedule.
    const wait = (began + i * intervalUs - now()) / 1000
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, Math.floor(wait)))
    inFlight.push(send(i))
  }
  await Promise.all(inFlight)
} else {
  let next = 0
  await Promise.all(Array.from({ length: job.connections }, async () => {
    while (next < job.bodies.length) await send(next++)
  }))
}
const cpu = process.cpuUsage(cpuBefore)
await pool.close()
process.stdout.write(JSON.stringify({ sends, seconds: (now() - began) / 1e6, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies PacedResult))
