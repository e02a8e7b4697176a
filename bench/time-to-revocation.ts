import { randomUUID } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import type { SessionIndex } from '../src/store/session-index.js'
import { log, pacedLoad, signLogoutTokens, startKratosDouble, stop, type Issuer, type KratosDouble } from './harness.js'
import type { PacedResult } from './paced-load.js'

/**
 * Time to revocation: from the moment a logout token is sent to the moment its identity's DELETE
 * arrives at Kratos — what a security team asks first. Measured for the relay (which answers once the
 * revocation is queued, and makes it after) and for baseline D (which makes the Kratos call in the
 * request), at a steady rate and at saturation, with the Kratos double answering at once and after
 * 20 ms. Each figure is the middle of `rounds` rounds, after a warm-up.
 */
export interface TimeToRevocationSetup {
  issuer: Issuer
  index: SessionIndex
  /** Starts the relay (or baseline D) against a Kratos double's port; the server to measure. */
  startRelay: (kratosPort: number) => Promise<{ child: ChildProcess, port: number }>
  startBaselineD: (kratosPort: number) => Promise<{ child: ChildProcess, port: number }>
  /** Logouts per round. */
  logouts: number
  rounds: number
  /** The steady rate, logouts per second. */
  rate: number
  /** Connections of the closed-loop (saturation) load. */
  connections: number
  latenciesMs: number[]
}

interface Distribution { p50: number, p99: number, max: number, count: number, missing: number }

/** One round's times to revocation (ms), and the servers' own answer latencies. */
interface Round { revocation: Distribution, answer: Distribution }

export interface TimeToRevocationRow {
  latencyMs: number
  load: string
  relay: Round[]
  baselineD: Round[]
}

function percentile (sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN
}

function distribution (values: number[], missing: number): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, count: sorted.length, missing }
}

/** The time from each send to its key's arrival at Kratos, and from each send to its answer, in ms. */
function roundOf (result: PacedResult, arrivals: Record<string, number>): Round {
  const revocations: number[] = []
  let missing = 0
  for (const send of result.sends) {
    const arrived = arrivals[send.key]
    if (arrived === undefined || send.status !== 200) missing++
    else revocations.push((arrived - send.sentUs) / 1000)
  }
  return {
    revocation: distribution(revocations, missing),
    answer: distribution(result.sends.map((send) => (send.answeredUs - send.sentUs) / 1000), 0)
  }
}

async function waitForArrivals (kratos: KratosDouble, count: number, timeoutMs = 30_000): Promise<Record<string, number>> {
  const arrivals: Record<string, number> = {}
  const deadline = Date.now() + timeoutMs
  while (Object.keys(arrivals).length < count && Date.now() < deadline) {
    Object.assign(arrivals, await kratos.arrivals())
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return Object.assign(arrivals, await kratos.arrivals())
}

export async function measureTimeToRevocation (setup: TimeToRevocationSetup): Promise<TimeToRevocationRow[]> {
  const rows: TimeToRevocationRow[] = []
  for (const latencyMs of setup.latenciesMs) {
    const kratos = await startKratosDouble({ latencyMs })
    const relay = await setup.startRelay(kratos.port)
    const baseline = await setup.startBaselineD(kratos.port)
    const loads: Array<{ name: string, rate?: number }> = [{ name: `${setup.rate} logouts/s`, rate: setup.rate }, { name: `saturation (${setup.connections} connections)` }]

    /** One run of fresh tokens for fresh indexed sids against one server; its round. */
    const run = async (port: number, keyOf: 'sid' | 'identity', rate: number | undefined, count: number): Promise<Round> => {
      const logins = Array.from({ length: count }, () => ({ sid: randomUUID(), identityId: randomUUID() }))
      for (let i = 0; i < logins.length; i += 1000) {
        await Promise.all(logins.slice(i, i + 1000).map(async (login) => await setup.index.add(login.sid, login.identityId)))
      }
      const tokens = await signLogoutTokens(setup.issuer, logins.map((login) => login.sid))
      await kratos.arrivals()
      const result = await pacedLoad({
        origin: `http://127.0.0.1:${port}`,
        path: '/backchannel-logout',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        bodies: tokens.map((token) => `logout_token=${token}`),
        keys: logins.map((login) => keyOf === 'sid' ? login.sid : login.identityId),
        connections: setup.connections,
        ...(rate !== undefined ? { rate } : {})
      })
      return roundOf(result, await waitForArrivals(kratos, count))
    }

    for (const load of loads) {
      log(`time to revocation: Kratos ${latencyMs === 0 ? 'at once' : `after ${latencyMs} ms`}, ${load.name}: warm-up`)
      const warmup = Math.min(2000, setup.logouts)
      await run(relay.port, 'identity', load.rate, warmup)
      await run(baseline.port, 'sid', load.rate, warmup)
      const row: TimeToRevocationRow = { latencyMs, load: load.name, relay: [], baselineD: [] }
      for (let round = 0; round < setup.rounds; round++) {
        log(`time to revocation: ${load.name}, round ${round + 1}`)
        row.relay.push(await run(relay.port, 'identity', load.rate, setup.logouts))
        row.baselineD.push(await run(baseline.port, 'sid', load.rate, setup.logouts))
      }
      rows.push(row)
    }
    await stop(relay.child)
    await stop(baseline.child)
    kratos.close()
  }
  return rows
}

/** The middle round by the figure `pick` (so p50, p99 and max each come from the round in the middle for it). */
function middleOf (rounds: Round[], pick: (round: Round) => number): number {
  const values = rounds.map(pick).sort((a, b) => a - b)
  return values[Math.floor(values.length / 2)] ?? Number.NaN
}

const ms = (value: number): string => value < 10 ? value.toFixed(1) : value.toFixed(0)

/** A table row per load: the relay's time to revocation, baseline D's, and their ratio. */
export function timeToRevocationRows (rows: TimeToRevocationRow[]): Array<[string, string, string]> {
  return rows.map((row) => {
    const of = (rounds: Round[]): string => {
      const p50 = middleOf(rounds, (round) => round.revocation.p50)
      const p99 = middleOf(rounds, (round) => round.revocation.p99)
      const max = middleOf(rounds, (round) => round.revocation.max)
      const answer = middleOf(rounds, (round) => round.answer.p99)
      const missing = rounds.reduce((sum, round) => sum + round.revocation.missing, 0)
      return `p50 ${ms(p50)} ms, p99 ${ms(p99)} ms, max ${ms(max)} ms (its answer p99 ${ms(answer)} ms${missing > 0 ? `; ${missing} never revoked` : ''})`
    }
    const relayP99 = middleOf(row.relay, (round) => round.revocation.p99)
    const dP99 = middleOf(row.baselineD, (round) => round.revocation.p99)
    const p99s = row.relay.map((round) => ms(round.revocation.p99)).join(', ')
    return [
      `time to revocation, Kratos ${row.latencyMs === 0 ? 'at once' : `+${row.latencyMs} ms`}, ${row.load}`,
      `p99 ${ms(relayP99)} ms`,
      `relay ${of(row.relay)}; rounds' p99 ${p99s} ms | baseline D ${of(row.baselineD)} | relay p99 / D p99 = ${(relayP99 / dP99).toFixed(2)}; target at 500/s: p99 ≤ 15 ms`
    ]
  })
}
