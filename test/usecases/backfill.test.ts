import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createHydraAdmin, createKratosAdmin } from '../../src/ory/admin.js'
import { listConsentSessions, listIdentitiesPage } from '../../src/ory/listings.js'
import { createPacer, type RateLimiter } from '../../src/pacer.js'
import { createRedisBackfillCursor, type BackfillCursorStore } from '../../src/store/backfill-cursor.js'
import { Keyspace, createRedisClient, waitForRedis, type RedisClient } from '../../src/store/redis.js'
import { createRedisRevocationQueue, type RevocationQueue } from '../../src/store/revocation-queue.js'
import { createRedisSessionIndex, type SessionIndex } from '../../src/store/session-index.js'
import { runBackfill, type BackfillDeps, type BackfillEvent, type BackfillOptions } from '../../src/usecases/backfill.js'
import { indexLogin } from '../../src/usecases/login-hook.js'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { checkContracts } from '../helper.js'
import { spawnRedis, type OwnedRedis } from '../helpers/redis.js'

const SID_TTL = 3600
const redisServer = await spawnRedis({ appendOnly: true })
t.teardown(() => redisServer.close())

function connect (server: OwnedRedis): RedisClient {
  const client = createRedisClient({ url: server.url }, pino({ level: 'silent' }))
  return client
}

const shared = connect(redisServer)
await waitForRedis(shared, 10_000)
t.teardown(() => shared.disconnect())

interface Setup {
  hydra: HydraDouble
  kratos: KratosDouble
  index: SessionIndex
  queue: RevocationQueue
  cursor: BackfillCursorStore
  keys: Keyspace
  events: BackfillEvent[]
  /** Identities the limiter was asked for, in order (the identity whose consents came next). */
  acquired: number
  run: (options?: BackfillOptions, overrides?: Partial<BackfillDeps>) => ReturnType<typeof runBackfill>
  /** A new run's cursor and lock, as a second process would have them. */
  nextRun: () => void
}

/** The backfill against the doubles and a real Redis, under a fresh key prefix; Kratos pages three identities at a time. */
async function setup (t: Test, options: { redis?: RedisClient, pageSize?: number, lockTtlMs?: number } = {}): Promise<Setup> {
  const hydra = await HydraDouble.start()
  const kratos = await new KratosDouble().listen()
  const hydraAdmin = createHydraAdmin({ adminUrl: hydra.url, timeoutMs: 2000 })
  const kratosAdmin = createKratosAdmin({ adminUrl: kratos.url, timeoutMs: 2000 })
  t.teardown(async () => {
    await Promise.all([hydraAdmin.close(), kratosAdmin.close()])
    await Promise.all([hydra.close(), kratos.close()])
  })
  checkContracts(t, hydra, kratos)
  const redis = options.redis ?? shared
  const keys = new Keyspace(`${redisServer.prefix}${randomUUID().slice(0, 8)}:`)
  const index = createRedisSessionIndex(redis, keys, { sidTtlSeconds: SID_TTL, unresolvedSidTtlSeconds: 600 })
  const queue = createRedisRevocationQueue(redis, keys)
  const events: BackfillEvent[] = []
  const lockTtl = options.lockTtlMs !== undefined ? { lockTtlMs: options.lockTtlMs } : {}
  let cursors = createRedisBackfillCursor(redis, keys, lockTtl)
  const setupResult: Setup = {
    hydra,
    kratos,
    index,
    queue,
    get cursor () { return cursors.store },
    keys,
    events,
    acquired: 0,
    nextRun: () => { cursors = createRedisBackfillCursor(redis, keys, lockTtl) },
    async run (runOptions = {}, overrides = {}) {
      if (runOptions.dryRun !== true && !await cursors.lock.acquire()) throw new Error('the cursor is locked')
      const limiter: RateLimiter = { acquire: async () => { setupResult.acquired++ } }
      try {
        return await runBackfill({
          identities: async (token) => await listIdentitiesPage(kratosAdmin, token, options.pageSize ?? 3),
          consents: async (subject) => await listConsentSessions(hydraAdmin, subject),
          index,
          queue,
          rememberSeconds: 600,
          cursor: cursors.store,
          clock: Date.now,
          limiter,
          onProgress: (event) => events.push(event),
          ...overrides
        }, { retry: { attempts: 2, baseMs: 1, maxMs: 5 }, ...runOptions })
      } finally {
        // With Redis down the lock stays, until it expires.
        await cursors.lock.release().catch(() => {})
      }
    }
  }
  return setupResult
}

/** Identities with consent sessions: each gets `sids` login sessions, each with a consent of two clients. */
function loggedIn (hydra: HydraDouble, kratos: KratosDouble, count: number, sids = 1): Map<string, string[]> {
  const users = new Map<string, string[]>()
  for (const identity of kratos.addIdentities(count)) {
    const mine: string[] = []
    for (let i = 0; i < sids; i++) {
      const sid = randomUUID()
      hydra.addConsent({ subject: identity, sid, clientId: 'app-a' })
      hydra.addConsent({ subject: identity, sid, clientId: 'app-b' })
      mine.push(sid)
    }
    users.set(identity, mine)
  }
  return users
}

async function indexed (index: SessionIndex, users: Map<string, string[]>): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {}
  for (const identity of users.keys()) found[identity] = (await index.sidsOf(identity)).map((entry) => entry.sid).sort()
  return found
}

function expected (users: Map<string, string[]>): Record<string, string[]> {
  return Object.fromEntries([...users].map(([identity, sids]) => [identity, [...sids].sort()]))
}

/** The subjects whose consent sessions Hydra was asked for, in order. */
function consentSubjects (hydra: HydraDouble): string[] {
  return hydra.callsOf('listOAuth2ConsentSessions').map((call) => call.query.get('subject') ?? '')
}

t.test('pages through every identity, indexes each login session once, with the live TTL; the cursor is gone at the end', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 7, 2)
  const ended = [...users.keys()][0] as string
  s.hydra.addConsent({ subject: ended, sid: '', clientId: 'app-c' })
  s.hydra.addConsent({ subject: ended, sid: randomUUID(), clientId: 'app-d', skip: true })
  const before = Date.now()
  const result = await s.run()
  t.equal(result.outcome, 'done')
  t.match(result.counts, { identities: 7, consentSessions: 29, consentSessionsUnread: 0, sidsIndexed: 14, alreadyKnown: 0, conflicts: 0, lateLogouts: 0, errors: 0 })
  t.same(await indexed(s.index, users), expected(users), 'every sid Hydra lists, for its identity; none of a skipped consent or an ended session')
  const [entry] = await s.index.sidsOf(ended)
  t.ok(entry !== undefined && entry.expiresAt >= before + SID_TTL * 1000 - 1000 && entry.expiresAt <= Date.now() + SID_TTL * 1000, 'the TTL of a sid the login hook indexes')
  t.same(s.kratos.callsOf('listIdentities').map((call) => call.query.get('page_token') ?? ''), ['', ...[...users.keys()].sort().filter((_, i) => i % 3 === 2).slice(0, 2)], 'three pages, each asked for by the token of the one before')
  t.equal(s.acquired, 7, 'the limiter was asked once per identity')
  t.equal(result.cursor, 'cleared')
  t.equal(await s.cursor.load(), undefined)
  t.equal(s.events.filter((event) => event.kind === 'progress').length, 7)
})

t.test('idempotent with the login hook and with itself', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 3)
  const [identityId, [sid] = []] = [...users][0] ?? []
  await indexLogin({ index: s.index, queue: s.queue, hydra: { loginSessionId: async () => null }, onEnqueued: () => {}, rememberSeconds: 600 }, { identityId: identityId as string, sid: sid as string })
  const first = await s.run()
  t.match(first.counts, { identities: 3, sidsIndexed: 2, alreadyKnown: 1, conflicts: 0 })
  s.nextRun()
  const second = await s.run()
  t.match(second.counts, { identities: 3, sidsIndexed: 0, alreadyKnown: 3 })
  t.same(await indexed(s.index, users), expected(users))
})

t.test('a sid the index holds for another identity is a conflict: counted, listed, never remapped', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 2)
  const [victim, [sid] = []] = [...users][1] ?? []
  const other = randomUUID()
  await s.index.add(sid as string, other)
  const result = await s.run()
  t.match(result.counts, { sidsIndexed: 1, conflicts: 1 })
  t.same(result.conflicts, [{ sid, identityId: victim, indexedFor: other }])
  t.equal(await s.index.resolve(sid as string, false), other, 'still the first identity\'s')
  t.equal(result.outcome, 'done', 'a conflict is no error')
})

t.test('a dry run reads everything and writes nothing', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 4)
  const known = [...users][0] as [string, string[]]
  await s.index.add(known[1][0] as string, known[0])
  const keysBefore = await shared.keys(`${s.keys.prefix}*`)
  const result = await s.run({ dryRun: true })
  t.match(result.counts, { identities: 4, sidsIndexed: 3, alreadyKnown: 1 })
  t.equal(result.cursor, 'untouched')
  t.same((await shared.keys(`${s.keys.prefix}*`)).sort(), keysBefore.sort(), 'no key written: no sid, no cursor')
  t.equal(consentSubjects(s.hydra).length, 4, 'every identity read')
})

t.test('the rate: the limiter is consulted before each identity\'s consent sessions; a pacer spaces them', async (t) => {
  const s = await setup(t)
  loggedIn(s.hydra, s.kratos, 5)
  const order: string[] = []
  const hydraCalls = (): number => s.hydra.callsOf('listOAuth2ConsentSessions').length
  await s.run({}, { limiter: { acquire: async () => { order.push(`acquire@${hydraCalls()}`) } } })
  t.same(order, ['acquire@0', 'acquire@1', 'acquire@2', 'acquire@3', 'acquire@4'], 'one slot per identity, each before its call')

  // A real pacer at 20 identities a second: five identities take at least four intervals.
  s.nextRun()
  const started = Date.now()
  await s.run({ restart: true }, { limiter: createPacer(20) })
  t.ok(Date.now() - started >= 4 * 50 - 5, `took ${Date.now() - started} ms`)
})

t.test('Kratos failing mid-way stops the run; the next one continues from the cursor, redoing no identity', async (t) => {
  const s = await setup(t, { pageSize: 2 })
  const users = loggedIn(s.hydra, s.kratos, 6)
  const result = await s.run({}, {
    onProgress: (event) => {
      // Two identities in, Kratos fails from the next page on.
      if (event.kind === 'progress' && event.counts.identities === 2) s.kratos.fail('listIdentities', { status: 500 })
    }
  })
  t.equal(result.outcome, 'stopped')
  t.match(result.stop, { source: 'kratos', message: /HTTP 500/ })
  t.equal(result.counts.identities, 2)
  t.equal(s.kratos.callsOf('listIdentities').length, 3, 'the second page was asked for twice (one retry)')
  const saved = await s.cursor.load()
  t.match(saved, { page: [...users.keys()].sort()[1], failed: [], totals: { identities: 2 } }, 'the cursor names the page that failed')
  t.equal(saved?.after, undefined)

  s.kratos.heal('listIdentities')
  const asked = consentSubjects(s.hydra).length
  s.nextRun()
  const resumed = await s.run()
  t.equal(resumed.outcome, 'done')
  t.equal(resumed.resumed?.totals.identities, 2)
  t.equal(resumed.counts.identities, 4, 'only the rest')
  t.equal(resumed.totals.identities, 6, 'all of them, over both runs')
  const subjects = consentSubjects(s.hydra).slice(asked)
  t.same(subjects, [...users.keys()].sort().slice(2), 'no identity read twice')
  t.same(await indexed(s.index, users), expected(users))
})

t.test('an interrupted run resumes after the last identity done', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 5)
  const abort = new AbortController()
  const result = await s.run({ signal: abort.signal }, {
    onProgress: (event) => { if (event.kind === 'progress' && event.counts.identities === 2) abort.abort() }
  })
  t.equal(result.outcome, 'interrupted')
  const ids = [...users.keys()].sort()
  const saved = await s.cursor.load()
  t.match(saved, { after: ids[1] })

  // A dry run reads what the next run would (from the cursor), or everything with --restart; it
  // leaves the cursor as it was.
  const fromCursor = await s.run({ dryRun: true })
  t.match(fromCursor, { counts: { identities: 3 }, cursor: 'untouched' })
  const everything = await s.run({ dryRun: true, restart: true })
  t.match(everything, { counts: { identities: 5, alreadyKnown: 2, sidsIndexed: 3 }, resumed: undefined })
  t.same(await s.cursor.load(), saved, 'the cursor is untouched')
  const asked = consentSubjects(s.hydra).length

  s.nextRun()
  const resumed = await s.run()
  t.equal(resumed.counts.identities, 3)
  t.same([...consentSubjects(s.hydra).slice(0, 2), ...consentSubjects(s.hydra).slice(asked)], ids, 'each identity read once by the real runs')

  // --restart: the next run begins again.
  s.nextRun()
  const again = await s.run({ restart: true })
  t.equal(again.resumed, undefined)
  t.equal(again.counts.identities, 5)
})

t.test('Hydra failing for an identity: listed, the run goes on, the next run tries it again first', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 4)
  const ids = [...users.keys()].sort()
  let faulted = false
  const result = await s.run({}, {
    onProgress: (event) => {
      s.events.push(event)
      // The third identity's consent sessions fail twice: every attempt.
      if (event.kind === 'progress' && event.counts.identities === 2 && !faulted) {
        faulted = true
        s.hydra.fail('listOAuth2ConsentSessions', { status: 503, times: 2 })
      }
    }
  })
  t.equal(result.outcome, 'done')
  t.match(result.failures, [{ identityId: ids[2], error: /HTTP 503/ }])
  t.match(result.counts, { identities: 3, errors: 1 })
  t.equal(result.cursor, 'kept')
  t.match(await s.cursor.load(), { failed: [ids[2]], listed: true, totals: { errors: 1 } })
  t.ok(s.events.some((event) => event.kind === 'retry' && event.service === 'hydra'), 'retried before counting it')

  const listings = s.kratos.callsOf('listIdentities').length
  s.nextRun()
  const retried = await s.run()
  t.equal(retried.outcome, 'done')
  t.same(retried.failures, [])
  t.equal(retried.counts.identities, 1, 'only the one that failed')
  t.equal(s.kratos.callsOf('listIdentities').length, listings, 'no listing: the others are done')
  t.equal(retried.cursor, 'cleared')
  t.same(await indexed(s.index, users), expected(users))
})

t.test('Hydra down stops the run after a few identities in a row; Hydra refusing the token stops it at once', async (t) => {
  const s = await setup(t)
  loggedIn(s.hydra, s.kratos, 6)
  s.hydra.fail('listOAuth2ConsentSessions', { status: 502 })
  const down = await s.run({ maxConsecutiveFailures: 3 })
  t.equal(down.outcome, 'stopped')
  t.match(down.stop, { source: 'hydra', message: /3 identities in a row/ })
  t.equal(down.failures.length, 3)
  t.match(await s.cursor.load(), { failed: down.failures.map((failure) => failure.identityId) })

  s.hydra.fail('listOAuth2ConsentSessions', { status: 401 })
  s.nextRun()
  const refused = await s.run()
  t.equal(refused.outcome, 'stopped')
  t.match(refused.stop, { source: 'hydra', message: /HTTP 401/ })
  t.equal(refused.failures.length, 0, 'a wrong token is no identity\'s failure')
  t.equal(s.hydra.callsOf('listOAuth2ConsentSessions').length, 3 * 2 + 1, 'no retry of a refusal')
})

t.test('a sid whose logout came first: indexed, and its identity\'s revocation queued as the login hook would', async (t) => {
  const s = await setup(t)
  const users = loggedIn(s.hydra, s.kratos, 1)
  const [identityId, [sid] = []] = [...users][0] ?? []
  t.equal(await s.index.resolve(sid as string, true), null, 'a logout for the sid, before it is known')
  const result = await s.run()
  t.match(result.counts, { sidsIndexed: 1, lateLogouts: 1 })
  const [claimed] = await s.queue.claim(10, 1000)
  t.match(claimed?.job, { target: { kind: 'kratos-sessions', identityId }, sid, cause: { kind: 'backfill' } })
})

t.test('Redis down: the run stops, saying so; the cursor it saved lets the next run continue', async (t) => {
  const own = await spawnRedis({ appendOnly: true })
  t.teardown(() => own.close())
  const redis = connect(own)
  await waitForRedis(redis, 10_000)
  t.teardown(() => redis.disconnect())
  const s = await setup(t, { redis, lockTtlMs: 300 })
  const users = loggedIn(s.hydra, s.kratos, 5)
  const result = await s.run({}, {
    consents: async (subject) => {
      // Redis dies as the third identity is read.
      if (consentSubjects(s.hydra).length === 2) await own.kill()
      return await listConsentSessions(createHydraAdminFor(s.hydra), subject)
    }
  }).catch((err: unknown) => err)
  t.match(result, { outcome: 'stopped', stop: { source: 'redis', message: /^Redis does not answer/ } })
  await own.restart()
  await waitForRedis(redis, 10_000)
  // The stopped run could not release its lock: the next one waits for it to expire.
  await new Promise((resolve) => setTimeout(resolve, 400))
  s.nextRun()
  const resumed = await s.run()
  t.equal(resumed.outcome, 'done')
  t.same(await indexed(s.index, users), expected(users), 'the AOF kept the cursor and the sids; the rest were indexed')
})

const adminFor = new Map<HydraDouble, ReturnType<typeof createHydraAdmin>>()
function createHydraAdminFor (hydra: HydraDouble): ReturnType<typeof createHydraAdmin> {
  let admin = adminFor.get(hydra)
  if (admin === undefined) {
    admin = createHydraAdmin({ adminUrl: hydra.url, timeoutMs: 2000 })
    adminFor.set(hydra, admin)
    const created = admin
    t.teardown(() => created.close())
  }
  return admin
}
