import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { HydraDouble } from './doubles/hydra.js'
import { KratosDouble } from './doubles/kratos.js'
import { HOOK_KEY, checkContracts, eventually } from './helper.js'
import { spawnRedis, type OwnedRedis } from './helpers/redis.js'
import { startRelayProcess, type RelayProcess } from './helpers/relay-process.js'

/**
 * Fault tests: relays as real processes, a real Redis, the Hydra and Kratos doubles. Each prints what
 * it did and asserts that every revocation acknowledged with 200 reached Kratos.
 */

interface World {
  hydra: HydraDouble
  kratos: KratosDouble
  redis: OwnedRedis
  env: Record<string, string>
  start: (extra?: Record<string, string>) => Promise<RelayProcess>
  /** Indexes `count` logins through a relay; returns their identity and sid. */
  logins: (relay: RelayProcess, count: number) => Promise<Array<{ identityId: string, sid: string }>>
  /** Sends one Hydra logout token per login, `concurrency` at a time; returns the identities acknowledged with 200. */
  logouts: (relay: RelayProcess, logins: Array<{ identityId: string, sid: string }>, concurrency?: number) => Promise<{ acknowledged: string[], statuses: Record<string, number> }>
  queued: () => Promise<{ waiting: number, active: number }>
}

async function world (t: Test): Promise<World> {
  const redis = await spawnRedis({ appendOnly: true })
  const hydra = await HydraDouble.start()
  const kratos = await new KratosDouble().listen()
  const relays: RelayProcess[] = []
  t.teardown(async () => {
    for (const relay of relays) relay.signal('SIGKILL')
    await Promise.all(relays.map(async (relay) => await relay.exited))
    await hydra.close()
    await kratos.close()
    await redis.close()
  })
  checkContracts(t, hydra, kratos)
  const env = {
    OIDC_ISSUER: hydra.issuer,
    KRATOS_ADMIN_URL: kratos.url,
    HYDRA_ADMIN_URL: hydra.url,
    REDIS_URL: redis.url,
    LOGIN_HOOK_API_KEYS: HOOK_KEY,
    LOG_LEVEL: 'warn',
    UPSTREAM_TIMEOUT: '1500',
    REVOCATION_LEASE: '3000',
    REVOCATION_BACKOFF_BASE: '50',
    REVOCATION_BACKOFF_MAX: '400',
    REDIS_COMMAND_TIMEOUT: '500',
    SHUTDOWN_TIMEOUT: '10000'
  }
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 200 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  return {
    hydra,
    kratos,
    redis,
    env,
    async start (extra = {}) {
      const relay = await startRelayProcess({ env: { ...env, ...extra } })
      relays.push(relay)
      return relay
    },
    async logins (relay, count) {
      const logins = Array.from({ length: count }, () => ({ identityId: randomUUID(), sid: randomUUID() }))
      for (const login of logins) {
        kratos.addSessions(login.identityId, 2)
        const response = await fetch(`${relay.url}/hooks/login`, {
          method: 'POST',
          headers: { authorization: `Bearer ${HOOK_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ identity_id: login.identityId, sid: login.sid })
        })
        if (response.status !== 204) throw new Error(`login hook answered ${response.status}`)
      }
      return logins
    },
    async logouts (relay, logins, concurrency = 8) {
      const acknowledged: string[] = []
      const statuses: Record<string, number> = {}
      const pending = [...logins]
      await Promise.all(Array.from({ length: concurrency }, async () => {
        for (let login = pending.shift(); login !== undefined; login = pending.shift()) {
          let status: string
          try {
            const response = await fetch(`${relay.url}/backchannel-logout`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ logout_token: await hydra.logoutToken(login.sid) })
            })
            await response.arrayBuffer()
            status = String(response.status)
            if (response.status === 200) acknowledged.push(login.identityId)
          } catch {
            status = 'no answer'
          }
          statuses[status] = (statuses[status] ?? 0) + 1
        }
      }))
      return { acknowledged, statuses }
    },
    async queued () {
      if (client.status !== 'ready') await client.connect().catch(() => {})
      // One MULTI: a job moving between the two sets cannot be counted twice or missed.
      const replies = await client.multi().zcard('logout-relay:queue:{revocations}:waiting').zcard('logout-relay:queue:{revocations}:active').exec()
      const [waiting, active] = (replies ?? []).map(([, count]) => Number(count))
      return { waiting: waiting ?? 0, active: active ?? 0 }
    }
  }
}

/** Waits until Kratos has no session left for any of the identities; returns those still holding one. */
async function awaitRevoked (kratos: KratosDouble, identities: string[], timeoutMs = 20_000): Promise<string[]> {
  await eventually(() => identities.every((id) => kratos.activeSessions(id) === 0), timeoutMs)
  return identities.filter((id) => kratos.activeSessions(id) > 0)
}

t.test('Kratos answers 503, then times out, while logouts keep arriving: all revoked after it recovers', async (t) => {
  const w = await world(t)
  const relay = await w.start()
  const logins = await w.logins(relay, 60)
  w.kratos.fail('deleteIdentitySessions', { status: 503 })
  const first = await w.logouts(relay, logins.slice(0, 30))
  w.kratos.fail('deleteIdentitySessions', { kind: 'timeout' })
  const second = await w.logouts(relay, logins.slice(30))
  const failedCalls = w.kratos.callsOf('deleteIdentitySessions').length
  const outage = await w.queued()
  w.kratos.heal('deleteIdentitySessions')
  const healedAt = Date.now()
  const acknowledged = [...first.acknowledged, ...second.acknowledged]
  const missing = await awaitRevoked(w.kratos, acknowledged)
  t.comment(`sent 60 logouts during a Kratos outage (503, then timeouts): ${acknowledged.length} acknowledged, ` +
    `${failedCalls} failed Kratos calls, ${outage.waiting + outage.active} jobs queued at the end of the outage; ` +
    `all revoked ${Date.now() - healedAt} ms after Kratos recovered`)
  t.equal(acknowledged.length, 60, 'every logout was acknowledged although Kratos was down')
  t.same(missing, [], 'every acknowledged revocation reached Kratos')
})

t.test('two replicas share the queue; one is SIGKILLed holding jobs, the other completes them', async (t) => {
  const w = await world(t)
  const [a, b] = [await w.start(), await w.start()]

  // Both alive and Kratos healthy: every job runs once, whichever replica takes it.
  const shared = await w.logins(a, 40)
  const half = await w.logouts(a, shared.slice(0, 20))
  const otherHalf = await w.logouts(b, shared.slice(20))
  t.same(await awaitRevoked(w.kratos, [...half.acknowledged, ...otherHalf.acknowledged]), [])
  const perIdentity = new Map<string, number>()
  for (const id of w.kratos.revokedIdentities()) perIdentity.set(id, (perIdentity.get(id) ?? 0) + 1)
  t.equal(perIdentity.size, 40)
  t.ok([...perIdentity.values()].every((count) => count === 1), 'each revocation ran exactly once across two replicas')

  // Kratos hangs: replica A's jobs are in flight, held under A's lease, when A dies without a goodbye.
  b.signal('SIGSTOP')
  w.kratos.fail('deleteIdentitySessions', { kind: 'timeout' })
  const held = await w.logins(a, 20)
  const sent = await w.logouts(a, held)
  t.ok(await eventually(async () => (await w.queued()).active > 0), 'replica A holds jobs')
  const atKill = await w.queued()
  a.signal('SIGKILL')
  t.equal(await a.exited, 'SIGKILL')
  w.kratos.heal('deleteIdentitySessions')
  b.signal('SIGCONT')
  const killedAt = Date.now()
  const missing = await awaitRevoked(w.kratos, sent.acknowledged)
  t.comment(`replica A acknowledged ${sent.acknowledged.length} logouts and held ${atKill.active} jobs when SIGKILLed; ` +
    `replica B completed them ${Date.now() - killedAt} ms later (lease 3000 ms)`)
  t.equal(sent.acknowledged.length, 20)
  t.same(missing, [], 'every acknowledged revocation reached Kratos')
  t.ok(await eventually(async () => { const left = await w.queued(); return left.waiting + left.active === 0 }), 'and the queue drained')
})

t.test('Redis stopped and restarted (AOF): 503 and not ready meanwhile, then recovery with nothing lost', async (t) => {
  const w = await world(t)
  const relay = await w.start()
  const logins = await w.logins(relay, 60)

  // Kratos is down too, so that acknowledged jobs are still queued in Redis when Redis goes down.
  w.kratos.fail('deleteIdentitySessions', { status: 503 })
  const before = await w.logouts(relay, logins.slice(0, 20))
  const queuedBefore = await w.queued()
  await w.redis.stop()
  const during = await w.logouts(relay, logins.slice(20, 40))
  const readyDuring = (await fetch(`${relay.url}/health/ready`)).status
  await w.redis.restart()
  t.ok(await eventually(async () => (await fetch(`${relay.url}/health/ready`)).status === 200, 15_000), 'ready again, without a restart of the relay')
  w.kratos.heal('deleteIdentitySessions')
  const after = await w.logouts(relay, [...logins.slice(20, 40).filter((login) => !during.acknowledged.includes(login.identityId)), ...logins.slice(40)])
  const acknowledged = [...before.acknowledged, ...during.acknowledged, ...after.acknowledged]
  const missing = await awaitRevoked(w.kratos, acknowledged)
  t.comment(`20 logouts before the stop (${queuedBefore.waiting + queuedBefore.active} jobs queued), 20 while Redis was down ` +
    `(${JSON.stringify(during.statuses)}), ready=${readyDuring} meanwhile; after the restart ${after.acknowledged.length} more; ` +
    `${acknowledged.length} acknowledged in all, every one revoked`)
  t.equal(before.acknowledged.length, 20)
  t.equal(during.acknowledged.length, 0, 'nothing acknowledged while Redis was down')
  t.same(Object.keys(during.statuses), ['503'], 'every request answered 503 meanwhile')
  t.equal(readyDuring, 503)
  t.equal(acknowledged.length, 60, 'Hydra\'s resends of the refused tokens succeed afterwards')
  t.same(missing, [], 'every acknowledged revocation reached Kratos, including those queued across the restart')
})

t.test('SIGTERM under load: requests in flight finish, exit 0, queued jobs wait for the next process', async (t) => {
  const w = await world(t)
  const relay = await w.start()
  const logins = await w.logins(relay, 200)
  w.kratos.fail('deleteIdentitySessions', { status: 503 })
  const load = w.logouts(relay, logins, 16)
  await eventually(() => w.kratos.callsOf('deleteIdentitySessions').length > 10)
  relay.signal('SIGTERM')
  const [{ acknowledged, statuses }, code] = await Promise.all([load, relay.exited])
  const left = await w.queued()
  t.equal(code, 0, 'exit 0')
  t.ok(acknowledged.length > 0 && acknowledged.length < 200, `the load was cut by the shutdown (${JSON.stringify(statuses)})`)
  t.ok(left.waiting + left.active > 0, 'unfinished revocations stayed queued')

  w.kratos.heal('deleteIdentitySessions')
  const next = await w.start()
  const missing = await awaitRevoked(w.kratos, acknowledged)
  t.comment(`SIGTERM during 200 logouts at 16 in flight: ${acknowledged.length} acknowledged (${JSON.stringify(statuses)}), ` +
    `exit ${code}, ${left.waiting + left.active} jobs left in Redis; the next process revoked them all`)
  t.same(missing, [], 'every acknowledged revocation reached Kratos')
  next.signal('SIGTERM')
  t.equal(await next.exited, 0)
})
