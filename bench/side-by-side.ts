import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { pino } from 'pino'
import { Keyspace, createRedisClient, waitForRedis } from '../src/store/redis.js'
import { createRedisSessionIndex } from '../src/store/session-index.js'
import { freePort, spawnRedis } from '../test/helpers/redis.js'
import { cleanUp, cpuSeconds, load, log, logoutLoad, signLogoutTokens, startIssuer, startKratosDouble, startProcess, stop } from './harness.js'

/**
 * `npx tsx bench/side-by-side.ts DIR DIR …`: builds of the relay compared where the machine's
 * neighbours cannot tell them apart. Each DIR is a checkout with `dist/` built (`npm run build`),
 * optionally with relay settings as JSON: `DIR@{"LOG_LEVEL":"warn"}`. All run at once, each under a
 * load generator of its own, against one Redis and one Kratos double, round after round: a slow minute
 * slows every build alike, so their CPU per logout (revocation included) compares round by round,
 * where rates measured a minute apart do not. SIDE_ROUNDS (5), SIDE_LOGOUTS per build and round (6000),
 * SIDE_CONNECTIONS per build (25).
 */
const ROUNDS = Number(process.env['SIDE_ROUNDS'] ?? 5)
const LOGOUTS = Number(process.env['SIDE_LOGOUTS'] ?? 6000)
const CONNECTIONS = Number(process.env['SIDE_CONNECTIONS'] ?? 25)
const WARMUP_LOGOUTS = 2000

const builds = process.argv.slice(2).map((arg) => {
  const at = arg.indexOf('@')
  const dir = resolve(at === -1 ? arg : arg.slice(0, at))
  return { name: arg, dir, env: at === -1 ? {} : JSON.parse(arg.slice(at + 1)) as Record<string, string> }
})
if (builds.length === 0) {
  process.stderr.write('usage: tsx bench/side-by-side.ts DIR[@{"SETTING":"value"}] DIR …\n')
  process.exit(2)
}

interface Run { rps: number, p99: number, cpuMicros: number }
const middle = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN

async function main (): Promise<void> {
  const issuer = await startIssuer()
  const kratos = await startKratosDouble()
  const redis = await spawnRedis({ appendOnly: true }, ['--appendfsync', 'everysec'])
  const client = createRedisClient({ url: redis.url }, pino({ level: 'silent' }))
  await waitForRedis(client, 5000)
  const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1])
  const index = createRedisSessionIndex(client, new Keyspace('logout-relay:'), { sidTtlSeconds: 86_400, unresolvedSidTtlSeconds: 86_400 })
  const runs = new Map<string, Run[]>(builds.map((build) => [build.name, []]))

  for (let round = 1; round <= ROUNDS; round++) {
    // Fresh tokens each round (they live 300 s), for sids indexed first.
    const logins = Array.from({ length: builds.length * (WARMUP_LOGOUTS + LOGOUTS) }, () => ({ sid: randomUUID(), identityId: randomUUID() }))
    log(`round ${round}: signing ${logins.length} tokens`)
    const bodies = (await signLogoutTokens(issuer, logins.map((login) => login.sid))).map((token) => `logout_token=${token}`)
    for (let i = 0; i < logins.length; i += 1000) {
      await Promise.all(logins.slice(i, i + 1000).map(async (login) => await index.add(login.sid, login.identityId)))
    }

    const relays = await Promise.all(builds.map(async (build, i) => {
      const port = await freePort()
      const env = {
        REDIS_URL: redis.url,
        OIDC_ISSUER: issuer.issuer,
        OIDC_JWKS_URL: `${issuer.issuer}.well-known/jwks.json`,
        KRATOS_ADMIN_URL: `http://127.0.0.1:${kratos.port}`,
        LOG_LEVEL: 'info',
        ...build.env
      }
      const child = await startProcess([`${build.dir}/dist/server.js`], env, port)
      const mine = bodies.slice(i * (WARMUP_LOGOUTS + LOGOUTS), (i + 1) * (WARMUP_LOGOUTS + LOGOUTS))
      const job = (chosen: string[]): Record<string, unknown> => ({ ...logoutLoad(port, chosen, { amount: chosen.length }), connections: CONNECTIONS })
      return { build, child, warmup: job(mine.slice(0, WARMUP_LOGOUTS)), measured: job(mine.slice(WARMUP_LOGOUTS)) }
    }))

    await kratos.saw('reset')
    await Promise.all(relays.map(async (relay) => await load(relay.warmup)))
    await kratos.revoked(relays.length * WARMUP_LOGOUTS)

    await kratos.saw('reset')
    const before = relays.map((relay) => cpuSeconds(relay.child.pid ?? 0))
    const othersBefore = [cpuSeconds(redisPid), cpuSeconds(kratos.pid)]
    const results = await Promise.all(relays.map(async (relay) => await load(relay.measured)))
    // CPU per logout counts until the last revocation is made: the work a logout causes, all of it.
    const seen = await kratos.revoked(relays.length * LOGOUTS)
    const line = relays.map((relay, i) => {
      const result = results[i]
      if (result === undefined) throw new Error('no result')
      const run = { rps: result.rps, p99: result.p99, cpuMicros: 1e6 * (cpuSeconds(relay.child.pid ?? 0) - (before[i] ?? 0)) / LOGOUTS }
      runs.get(relay.build.name)?.push(run)
      const failed = result.non2xx + result.errors
      return `${relay.build.name}: ${run.rps.toFixed(0)} req/s, p99 ${run.p99} ms, ${run.cpuMicros.toFixed(0)} µs${failed > 0 ? `, ${failed} failed` : ''}`
    })
    const perLogout = (pid: number, since: number): string => (1e6 * (cpuSeconds(pid) - since) / (relays.length * LOGOUTS)).toFixed(0)
    process.stdout.write(`round ${round}  ${line.join('  |  ')}  |  Redis ${perLogout(redisPid, othersBefore[0] ?? 0)}, Kratos double ${perLogout(kratos.pid, othersBefore[1] ?? 0)} µs per logout; ${seen.count}/${relays.length * LOGOUTS} revoked\n`)
    await Promise.all(relays.map(async (relay) => { await stop(relay.child) }))
  }

  process.stdout.write('\nCPU per logout (revocation included), the middle of the rounds and their range; rates alike:\n')
  for (const [name, list] of runs) {
    const cpu = list.map((run) => run.cpuMicros)
    const rates = list.map((run) => run.rps)
    process.stdout.write(`  ${name}: ${middle(cpu).toFixed(0)} µs (${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)}), ${middle(rates).toFixed(0)} req/s (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})\n`)
  }
  client.disconnect()
  await redis.close()
  issuer.close()
  kratos.close()
}

try {
  await main()
} finally {
  cleanUp()
}
