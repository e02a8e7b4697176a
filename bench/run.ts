import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { Keyspace, createRedisClient, waitForRedis } from '../src/store/redis.js'
import { createRedisRevocationQueue } from '../src/store/revocation-queue.js'
import { createRedisSessionIndex } from '../src/store/session-index.js'
import { freePort, spawnRedis } from '../test/helpers/redis.js'
import { cleanUp, cpuSeconds, load as loadJob, log, logoutLoad, root, rssMegabytes, signLogoutTokens, sleep, startIssuer, startKratosDouble, startProcess, stop, type KratosSaw } from './harness.js'
import type { LoadResult } from './load.js'
import { measureTimeToRevocation, timeToRevocationRows } from './time-to-revocation.js'

/**
 * `npm run bench`: the relay's speed as ratios to what this machine can do, in one bounded run on
 * loopback. Everything it needs it starts itself: a Redis (AOF, everysec), a Kratos double answering
 * 204 at once, the issuer's JWKS, the baselines, the relay (compiled, as the image runs it) and the
 * load generator (autocannon) in a process of its own. Prints a table; `--json FILE` also writes it.
 * Every server is warmed up before it is measured, so that the figures are of compiled code, not of
 * V8 compiling it. BENCH_LOGOUTS sets the number of measured logouts (30000); BENCH_PHASES a subset of
 * the phases (hook, baselines, logout, ttr, drain, memory, rss), e.g. to profile one; BENCH_TTR_LOGOUTS
 * and BENCH_TTR_ROUNDS the time-to-revocation runs (4000 logouts, 3 rounds per figure).
 */
const CONNECTIONS = 50
const LOGOUTS = Number(process.env['BENCH_LOGOUTS'] ?? 30_000)
/** The measured logouts run in this many rounds, each right after a run of baselines C and D. */
const LOGOUT_ROUNDS = 3
const BASELINE_SECONDS = 5
const WARMUP_SECONDS = 2
/** Logins and logouts sent to warm the relay up before each measured run. */
const WARMUP_LOGOUTS = 5000
const DRAIN_JOBS = 10_000
const DRAIN_WARMUP_JOBS = 3000
const INDEX_ENTRIES = 100_000
const IDLE_SETTLE_MS = 45_000
const ALL_PHASES = ['hook', 'baselines', 'logout', 'ttr', 'drain', 'memory', 'rss']
/** Time to revocation: logouts per round, rounds, the steady rate (logouts/s). */
const TTR_LOGOUTS = Number(process.env['BENCH_TTR_LOGOUTS'] ?? 4000)
const TTR_ROUNDS = Number(process.env['BENCH_TTR_ROUNDS'] ?? 3)
const TTR_RATE = 500
const phases = new Set((process.env['BENCH_PHASES'] ?? ALL_PHASES.join(',')).split(',').map((phase) => phase.trim()))
const HOOK_KEY = `bench-hook-key-${randomUUID()}`
const began = Date.now()

/** CPU time per request, in µs, of each process the run kept busy: the server, and whichever others took part. */
type MachineShare = Record<string, number>

/**
 * A load run, with the CPU time the process `pid` spent per request over it (µs), and that of every
 * process of the machine's share of the work: `others` (Redis, the Kratos double) and the load generator.
 */
async function measured<T extends LoadResult> (pid: number, others: Record<string, number>, run: () => Promise<T>): Promise<T & { cpuMicros: number, machine: MachineShare }> {
  const before = cpuSeconds(pid)
  const othersBefore = Object.fromEntries(Object.entries(others).map(([name, other]) => [name, cpuSeconds(other)]))
  const result = await run()
  const perRequest = (seconds: number): number => 1e6 * seconds / result.requests
  const cpuMicros = perRequest(cpuSeconds(pid) - before)
  const machine: MachineShare = { server: cpuMicros }
  for (const [name, other] of Object.entries(others)) machine[name] = perRequest(cpuSeconds(other) - (othersBefore[name] ?? 0))
  machine['load generator'] = perRequest(result.cpuSeconds)
  return { ...result, cpuMicros, machine }
}

/** "relay 240 + Redis 60 + … = 480 µs": where the machine's CPU went, per request. */
function machineShare (server: string, machine: MachineShare): string {
  const parts = Object.entries(machine).map(([name, micros]) => `${name === 'server' ? server : name} ${micros.toFixed(0)}`)
  const total = Object.values(machine).reduce((sum, micros) => sum + micros, 0)
  return `machine per request: ${parts.join(' + ')} = ${total.toFixed(0)} µs`
}

const BASELINE_NAMES: Record<string, string> = {
  A: 'baseline A: Fastify + form body',
  B: 'baseline B: A + jose RS256 verify',
  C: 'baseline C: B + SET NX + GET',
  D: 'baseline D: C + the Kratos call'
}

/** A baseline's row: its run (the middle one, when it ran in rounds), and each run's rate. */
function baselineRow (mode: string, run: LoadResult & { cpuMicros: number, machine: MachineShare }, runs: LoadResult[] = [run]): [string, string, string] {
  const of = runs.length > 1 ? `; the middle of ${runs.length} runs (${runs.map((each) => each.rps.toFixed(0)).join(', ')} req/s)` : ''
  return [BASELINE_NAMES[mode] ?? mode, `${run.rps.toFixed(0)} req/s`, `p50 ${run.p50} ms, p99 ${run.p99} ms, ${run.cpuMicros.toFixed(0)} µs CPU each; ${machineShare(mode, run.machine)}${of}`]
}

/** The run whose rate is the middle one. */
function middle<T extends LoadResult> (runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps)
  const run = sorted[Math.floor(sorted.length / 2)]
  if (run === undefined) throw new Error('no runs')
  return run
}

function statuses (result: LoadResult): string {
  return Object.entries(result.statusCodes).map(([code, { count }]) => `${code}×${count}`).join(' ') +
    (result.errors > 0 ? ` errors×${result.errors}` : '')
}

/** A load job at the benchmark's connections. */
async function load (job: Record<string, unknown>): Promise<LoadResult> {
  return await loadJob({ connections: CONNECTIONS, ...job })
}

async function main (): Promise<void> {
  const issuerKeys = await startIssuer()
  const { issuer, jwks } = issuerKeys
  const kratos = await startKratosDouble()
  const kratosPort = kratos.port

  const redis = await spawnRedis({ appendOnly: true }, ['--appendfsync', 'everysec'])
  const admin = new Redis(redis.url)
  const redisPid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1])

  // One login and one token per logout: those that warm the relay up, then those measured.
  const total = WARMUP_LOGOUTS + LOGOUTS
  const logins = Array.from({ length: total }, () => ({ sid: randomUUID(), identityId: randomUUID() }))
  log(`signing ${total} Hydra-shaped logout tokens`)
  const logoutBodies = (await signLogoutTokens(issuerKeys, logins.map((login) => login.sid))).map((token) => `logout_token=${token}`)
  const warmupBodies = logoutBodies.slice(0, WARMUP_LOGOUTS)
  const measuredBodies = logoutBodies.slice(WARMUP_LOGOUTS)

  // The relay, compiled, on the defaults a deployment would have (info logs, to /dev/null here).
  const relayPort = await freePort()
  const relayEnv = {
    REDIS_URL: redis.url,
    OIDC_ISSUER: issuer,
    OIDC_JWKS_URL: `${issuer}.well-known/jwks.json`,
    KRATOS_ADMIN_URL: `http://127.0.0.1:${kratosPort}`,
    LOGIN_HOOK_API_KEYS: HOOK_KEY,
    HOOK_RATE_LIMIT: '1000000000',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    // Any other relay setting to try, as JSON: BENCH_RELAY_ENV='{"REVOCATION_CONCURRENCY":"64"}'.
    ...JSON.parse(process.env['BENCH_RELAY_ENV'] ?? '{}') as Record<string, string>
  }
  // e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the relay (see bench/cpu-profile.ts).
  const relayArgs = [...(process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((arg) => arg !== ''), join(root, 'dist/server.js')]
  const relayUrl = `http://127.0.0.1:${relayPort}`
  const client = createRedisClient({ url: redis.url }, pino({ level: 'silent' }))
  await waitForRedis(client, 5000)
  const rows: Array<[string, string, string]> = []
  const results: Record<string, unknown> = {}

  // An idle relay of its own, started first and read last: its memory once settled.
  let idle: ChildProcess | undefined
  let earlyRss = 0
  const idleSince = Date.now()
  if (phases.has('rss')) {
    idle = await startProcess([join(root, 'dist/server.js')], { ...relayEnv, REDIS_KEY_PREFIX: 'bench-idle:' }, await freePort())
    await sleep(2000)
    earlyRss = rssMegabytes(idle.pid ?? 0)
  }

  let relay = await startProcess(relayArgs, relayEnv, relayPort)
  if (phases.has('hook')) {
    log('login hook: indexing every sid the logout tokens name')
    const hookJob = (chosen: typeof logins): Record<string, unknown> => ({
      url: `${relayUrl}/hooks/login`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${HOOK_KEY}` },
      bodies: chosen.map((login) => JSON.stringify({ identity_id: login.identityId, sid: login.sid })),
      amount: chosen.length
    })
    await load(hookJob(logins.slice(0, WARMUP_LOGOUTS)))
    const hook = await measured(relay.pid ?? 0, { Redis: redisPid }, async () => await load(hookJob(logins.slice(WARMUP_LOGOUTS))))
    results['hook'] = hook
    rows.push(['login hook (sid form)', `${hook.rps.toFixed(0)} req/s`, `p99 ${hook.p99} ms, ${hook.cpuMicros.toFixed(0)} µs CPU each, statuses ${statuses(hook)}; ${machineShare('relay', hook.machine)}; target ≥ 15,000 req/s`])
  } else {
    log('indexing every sid the logout tokens name, straight into Redis')
    const index = createRedisSessionIndex(client, new Keyspace('logout-relay:'), { sidTtlSeconds: 2_592_000, unresolvedSidTtlSeconds: 86_400 })
    for (let i = 0; i < logins.length; i += 1000) {
      await Promise.all(logins.slice(i, i + 1000).map(async (login) => await index.add(login.sid, login.identityId)))
    }
  }

  type Measured = LoadResult & { cpuMicros: number, machine: MachineShare }
  const baselines: Record<string, Measured> = {}
  /** Baselines C and D, kept running when the logout is measured too: they are then measured in turns with it. */
  const paired = new Map<string, { server: ChildProcess, measure: () => Promise<Measured> }>()
  if (phases.has('baselines')) {
    for (const mode of ['A', 'B', 'C', 'D']) {
      log(`baseline ${mode}`)
      const port = await freePort()
      const server = await startProcess(['--import', 'tsx', join(root, 'bench/baseline.ts')],
        { MODE: mode, JWKS: JSON.stringify(jwks), ISSUER: issuer, REDIS_URL: redis.url, KRATOS_URL: `http://127.0.0.1:${kratosPort}` }, port)
      await load(logoutLoad(port, warmupBodies, { duration: WARMUP_SECONDS }))
      const others = { A: {}, B: {}, C: { Redis: redisPid }, D: { Redis: redisPid, 'Kratos double': kratos.pid } }[mode] ?? {}
      const measure = async (): Promise<Measured> => await measured(server.pid ?? 0, others,
        async () => await load(logoutLoad(port, warmupBodies, { duration: BASELINE_SECONDS })))
      if ((mode === 'C' || mode === 'D') && phases.has('logout')) {
        paired.set(mode, { server, measure })
        continue
      }
      baselines[mode] = await measure()
      await stop(server)
    }
    rows.unshift(...Object.entries(baselines).map(([mode, run]) => baselineRow(mode, run)))
  }

  if (phases.has('logout')) {
    const logoutJob = (bodies: string[]): Record<string, unknown> => logoutLoad(relayPort, bodies, { amount: bodies.length })
    log(`relay: ${WARMUP_LOGOUTS} logouts to warm up`)
    await kratos.saw('reset')
    await load(logoutJob(warmupBodies))
    await kratos.revoked(WARMUP_LOGOUTS)

    // The measured logouts in rounds, each right after a run of baselines C and D when they are
    // measured too: a ratio of two runs a minute apart would measure the machine's neighbours as much
    // as the relay.
    const rounds: Array<{ logout: Measured & { revoked: number }, paired: Record<string, Measured> }> = []
    const perRound = Math.ceil(measuredBodies.length / LOGOUT_ROUNDS)
    for (let round = 0; round < LOGOUT_ROUNDS; round++) {
      const pairedRuns: Record<string, Measured> = {}
      for (const [mode, baseline] of paired) {
        log(`baseline ${mode}, round ${round + 1}`)
        pairedRuns[mode] = await baseline.measure()
      }
      const bodies = measuredBodies.slice(round * perRound, (round + 1) * perRound)
      log(`relay, round ${round + 1}: ${bodies.length} logouts, each a distinct token for an indexed sid`)
      await kratos.saw('reset')
      // CPU per logout counts until the last revocation is made: the work a logout causes, all of it.
      const logout = await measured(relay.pid ?? 0, { Redis: redisPid, 'Kratos double': kratos.pid }, async () => {
        const result = await load(logoutJob(bodies))
        return { ...result, revoked: (await kratos.revoked(bodies.length)).count }
      })
      rounds.push({ logout, paired: pairedRuns })
    }
    for (const { server } of paired.values()) await stop(server)

    const logout = middle(rounds.map((round) => round.logout))
    const rates = (list: LoadResult[]): string => list.map((result) => result.rps.toFixed(0)).join(', ')
    const logouts = rounds.map((round) => round.logout)
    const revokedAll = logouts.reduce((sum, round) => sum + round.revoked, 0)
    const percent = (ratio: number): string => `${(100 * ratio).toFixed(0)} %`
    /** The middle of each round's ratio of the relay to a paired baseline, and every round's. */
    const ratioTo = (mode: string): { middle: string, all: string } | undefined => {
      const ratios = rounds.flatMap((round) => round.paired[mode] === undefined ? [] : [round.logout.rps / round.paired[mode].rps]).sort((a, b) => a - b)
      const mid = ratios[Math.floor(ratios.length / 2)]
      return mid === undefined ? undefined : { middle: percent(mid), all: ratios.map(percent).join(', ') }
    }
    let at = 2
    for (const mode of paired.keys()) {
      const runs = rounds.flatMap((round) => round.paired[mode] ?? [])
      baselines[mode] = middle(runs)
      rows.splice(at++, 0, baselineRow(mode, baselines[mode], runs))
    }
    results['logout'] = { rounds }
    rows.push(['relay logout', `${logout.rps.toFixed(0)} req/s`, `p50 ${logout.p50} ms, p99 ${logout.p99} ms, ${logout.cpuMicros.toFixed(0)} µs CPU each (revocation included), statuses ${statuses(logout)}; ${machineShare('relay', logout.machine)}; the middle of ${logouts.length} runs (${rates(logouts)} req/s); ${revokedAll}/${measuredBodies.length} revoked at Kratos`])
    const B = baselines['B']
    const toC = ratioTo('C')
    const toD = ratioTo('D')
    if (toC !== undefined && B !== undefined) {
      rows.push(['relay logout / C, / B', `${toC.middle}, ${percent(logout.rps / B.rps)}`,
        `/ C: the middle of each round's ratio (${toC.all}); target: ≥ 70 % of C, p99 ≤ 15 ms`])
    }
    if (toD !== undefined) {
      rows.push(['relay logout / D', toD.middle, `the middle of each round's ratio (${toD.all}); D makes the Kratos call in the request, the relay queues it durably and makes it after`])
    }
  }
  await stop(relay)

  if (phases.has('ttr')) {
    const index = createRedisSessionIndex(client, new Keyspace('logout-relay:'), { sidTtlSeconds: 86_400, unresolvedSidTtlSeconds: 86_400 })
    const ttr = await measureTimeToRevocation({
      issuer: issuerKeys,
      index,
      logouts: TTR_LOGOUTS,
      rounds: TTR_ROUNDS,
      rate: TTR_RATE,
      connections: CONNECTIONS,
      latenciesMs: [0, 20],
      startRelay: async (port) => {
        const child = await startProcess(relayArgs, { ...relayEnv, KRATOS_ADMIN_URL: `http://127.0.0.1:${port}` }, relayPort)
        return { child, port: relayPort }
      },
      startBaselineD: async (port) => {
        const baselinePort = await freePort()
        const child = await startProcess(['--import', 'tsx', join(root, 'bench/baseline.ts')],
          { MODE: 'D', JWKS: JSON.stringify(jwks), ISSUER: issuer, REDIS_URL: redis.url, KRATOS_URL: `http://127.0.0.1:${port}` }, baselinePort)
        return { child, port: baselinePort }
      }
    })
    results['timeToRevocation'] = ttr
    rows.push(...timeToRevocationRows(ttr))
  }

  if (phases.has('drain')) {
    relay = await startProcess(relayArgs, relayEnv, relayPort)
    const queue = createRedisRevocationQueue(client, new Keyspace('logout-relay:'))
    // Queues `count` jobs, and waits until Kratos has seen them all.
    const drain = async (count: number): Promise<KratosSaw> => {
      await kratos.saw('reset')
      for (let i = 0; i < count; i += 500) {
        const batch = Math.min(500, count - i)
        await queue.enqueue(Array.from({ length: batch }, () => ({ target: { kind: 'kratos-sessions' as const, identityId: randomUUID() } })), 60)
      }
      return await kratos.revoked(count, 60_000)
    }
    log(`drain: ${DRAIN_WARMUP_JOBS} jobs to warm up`)
    await drain(DRAIN_WARMUP_JOBS)
    // The relay idles first, so that its CPU time from here on is the drain's.
    await sleep(1500)
    log(`drain: ${DRAIN_JOBS} queued jobs`)
    const cpuBefore = cpuSeconds(relay.pid ?? 0)
    const drained = await drain(DRAIN_JOBS)
    const drainSeconds = drained.count >= DRAIN_JOBS ? (drained.last - drained.first) / 1000 : Number.NaN
    await sleep(200)
    const drainCpuMicros = 1e6 * (cpuSeconds(relay.pid ?? 0) - cpuBefore) / DRAIN_JOBS
    await stop(relay)
    log('Kratos double on its own')
    const kratosAlone = await load({
      url: `http://127.0.0.1:${kratosPort}`,
      method: 'DELETE',
      headers: {},
      paths: Array.from({ length: 1000 }, () => `/admin/identities/${randomUUID()}/sessions`),
      duration: 3
    })
    results['drain'] = { drainSeconds, rate: DRAIN_JOBS / drainSeconds, cpuMicros: drainCpuMicros, kratosAlone }
    rows.push(['drain', `${(DRAIN_JOBS / drainSeconds).toFixed(0)} jobs/s`, `${DRAIN_JOBS} jobs in ${drainSeconds.toFixed(2)} s, ${drainCpuMicros.toFixed(0)} µs CPU each; the Kratos double alone: ${kratosAlone.rps.toFixed(0)} req/s; target ≥ 5,000`])
  }

  if (phases.has('memory')) {
    log(`index memory: ${INDEX_ENTRIES} sids`)
    const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
    const index = createRedisSessionIndex(client, new Keyspace('bench-memory:'), { sidTtlSeconds: 2_592_000, unresolvedSidTtlSeconds: 86_400 })
    const before = await used()
    for (let i = 0; i < INDEX_ENTRIES; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, async () => await index.add(randomUUID(), randomUUID())))
    }
    const bytesPerSid = (await used() - before) / INDEX_ENTRIES
    results['bytesPerSid'] = bytesPerSid
    rows.push(['index memory', `${bytesPerSid.toFixed(0)} bytes/sid`, `INFO used_memory delta over ${INDEX_ENTRIES} sids; target ≤ 200`])
  }

  if (idle !== undefined) {
    // V8 gives back the heap it grew while loading once the process has idled for a while.
    while (Date.now() < idleSince + IDLE_SETTLE_MS) await sleep(500)
    const settledRss = rssMegabytes(idle.pid ?? 0)
    await stop(idle)
    results['idleRss'] = { earlyRss, settledRss }
    rows.push(['idle RSS', `${settledRss.toFixed(1)} MB`, `an idle relay ${((Date.now() - idleSince) / 1000).toFixed(0)} s after start (${earlyRss.toFixed(1)} MB 2 s after start); target ≤ 90 MB`])
  }

  client.disconnect()
  admin.disconnect()
  await redis.close()
  issuerKeys.close()
  kratos.close()

  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]?.length ?? 0), 6))
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`
  process.stdout.write([
    '',
    `logout-relay benchmark — ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, ${CONNECTIONS} connections, loopback`,
    '',
    line(['figure', 'value', 'detail']),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `(${((Date.now() - began) / 1000).toFixed(0)} s in all)`,
    ''
  ].join('\n'))
  const json = process.argv.indexOf('--json')
  if (json !== -1 && process.argv[json + 1] !== undefined) {
    writeFileSync(process.argv[json + 1] as string, JSON.stringify(results, null, 2))
  }
}

try {
  await main()
} finally {
  cleanUp()
}
