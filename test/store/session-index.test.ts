import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex, type SessionIndexOptions } from '../../src/store/session-index.js'
import { backends } from '../helpers/backends.js'

const options: SessionIndexOptions = { sidTtlSeconds: 3600, unresolvedSidTtlSeconds: 600 }

const all = await backends(t)
for (const backend of all) {
  const make = (overrides: Partial<SessionIndexOptions> = {}): SessionIndex => backend.redis === undefined
    ? createMemorySessionIndex({ ...options, ...overrides })
    : createRedisSessionIndex(backend.redis, backend.keys(), { ...options, ...overrides })

  t.test(`${backend.name}: sid → identity`, async (t) => {
    const index = make()
    const sid = randomUUID()
    const identity = randomUUID()
    t.equal(await index.resolve(sid, false), null)
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: false })
    t.equal(await index.resolve(sid, false), identity)
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: false }, 'idempotent')
    t.equal(await index.resolve(sid, true), identity)
  })

  t.test(`${backend.name}: a logout before the login is remembered`, async (t) => {
    const index = make()
    const sid = randomUUID()
    const identity = randomUUID()
    t.equal(await index.resolve(sid, true), null)
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: true })
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: true }, 'until forgotten')
    await index.forgetLogout(sid)
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: false })

    const quiet = randomUUID()
    t.equal(await index.resolve(quiet, false), null)
    t.same(await index.add(quiet, randomUUID()), { outcome: 'indexed', loggedOut: false }, 'a lookup that does not remember leaves no mark')
  })

  t.test(`${backend.name}: a live sid is never remapped to another identity`, async (t) => {
    let now = Date.now()
    const index = make({ clock: () => now, sidTtlSeconds: 60 })
    const sid = randomUUID()
    const [victim, other] = [randomUUID(), randomUUID()]
    t.same(await index.add(sid, victim), { outcome: 'indexed', loggedOut: false })
    t.same(await index.add(sid, other), { outcome: 'conflict' })
    t.equal(await index.resolve(sid, false), victim, 'the first mapping stays')
    t.same(await index.sidsOf(other), [], 'nothing written for the other identity')
    t.same(await index.add(sid, victim), { outcome: 'indexed', loggedOut: false }, 'the same identity again is idempotent')
    now += 61_000
    t.same(await index.add(sid, other), { outcome: 'indexed', loggedOut: false }, 'an expired mapping is no longer live')
    t.equal(await index.resolve(sid, false), other)
  })

  t.test(`${backend.name}: an identity keeps at most its cap of sids; the one that expires first goes`, async (t) => {
    let now = Date.now()
    const index = make({ clock: () => now, maxSidsPerIdentity: 3 })
    const identity = randomUUID()
    const sids: string[] = []
    for (let i = 0; i < 5; i++) {
      sids.push(`sid-${i}-${randomUUID()}`)
      await index.add(sids[i] ?? '', identity)
      now += 2000
    }
    t.same((await index.sidsOf(identity)).map((entry) => entry.sid).sort(), sids.slice(2).sort(), 'the three newest')
    t.equal(await index.resolve(sids[0] ?? '', false), identity, 'a sid off the list still resolves until it expires')
  })

  t.test(`${backend.name}: identity → its live sids`, async (t) => {
    let now = Date.now()
    const index = make({ clock: () => now, sidTtlSeconds: 60 })
    const identity = randomUUID()
    const [a, b] = [randomUUID(), randomUUID()]
    await index.add(a, identity)
    now += 30_000
    await index.add(b, identity)
    const sids = await index.sidsOf(identity)
    t.same(sids.map((entry) => entry.sid).sort(), [a, b].sort())
    const expiresAt = sids.find((entry) => entry.sid === b)?.expiresAt ?? 0
    t.ok(Math.abs(expiresAt - (now + 60_000)) < 1000, 'expiry to the second')
    now += 31_000
    t.same((await index.sidsOf(identity)).map((entry) => entry.sid), [b], 'the expired sid is gone')
    t.same(await index.sidsOf(randomUUID()), [])
  })
}

t.test('redis: compact buckets that expire, prune and round-trip any sid', async (t) => {
  const backend = all.find((candidate) => candidate.name === 'redis')
  const redis = backend?.redis
  if (backend === undefined || redis === undefined) throw new Error('no redis backend')
  const keys = backend.keys()
  let now = Date.now()
  const index = createRedisSessionIndex(redis, keys, { ...options, clock: () => now, pruneOneIn: 1 })
  const sids = [randomUUID(), randomUUID().toUpperCase(), 'opaque-sid', 'odd{sid}%with}braces', 'ünïcödé ✓', 'x'.repeat(45)]
  const identity = randomUUID()
  for (const sid of sids) {
    t.equal(await index.resolve(sid, true), null)
    t.same(await index.add(sid, identity), { outcome: 'indexed', loggedOut: true })
    t.equal(await index.resolve(sid, false), identity, `round-trips ${sid.slice(0, 20)}`)
  }
  t.same((await index.sidsOf(identity)).map((entry) => entry.sid).sort(), [...sids].sort())

  const written = await redis.keys(`${keys.prefix}*`)
  t.ok(written.length > 0 && written.length <= 2 * sids.length, `${written.length} bucket keys for ${sids.length} sids`)
  for (const key of written) {
    t.match(key, /^.+:(sids|identities):\{\d+\}$/, 'a bucket key with a hash tag')
    const ttl = await redis.ttl(key)
    t.ok(ttl > 0 && ttl <= 3600, `${key} expires (${ttl}s)`)
    t.equal(await redis.object('ENCODING', key), 'listpack', 'kept compact')
  }

  // A sid too long for a compact entry still works (its buckets just take more memory).
  const long = 'y'.repeat(1024)
  await index.add(long, randomUUID())
  t.ok(typeof await index.resolve(long, false) === 'string')

  // An hour later every entry has expired; the next write to a bucket prunes it.
  now += 3601_000
  t.equal(await index.resolve(sids[0] ?? '', false), null, 'expired entries are not served')
  t.same(await index.sidsOf(identity), [])
  const fresh = randomUUID()
  await index.add(sids[0] ?? '', fresh)
  const forward = written.find((key) => key.includes(':sids:')) ?? ''
  t.ok(await redis.hlen(forward) <= 2, 'the bucket was pruned of expired entries')
  t.equal(await index.resolve(sids[0] ?? '', false), fresh)
})
