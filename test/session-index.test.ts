import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex, type SessionIndexOptions } from '../src/session-index.js'
import { backends } from './helpers/backends.js'

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
    t.same(await index.add(sid, identity), { loggedOut: false })
    t.equal(await index.resolve(sid, false), identity)
    t.same(await index.add(sid, identity), { loggedOut: false }, 'idempotent')
    t.equal(await index.resolve(sid, true), identity)
  })

  t.test(`${backend.name}: a logout before the login is remembered`, async (t) => {
    const index = make()
    const sid = randomUUID()
    t.equal(await index.resolve(sid, true), null)
    t.same(await index.add(sid, randomUUID()), { loggedOut: true })
    t.same(await index.add(sid, randomUUID()), { loggedOut: true }, 'until forgotten')
    await index.forgetLogout(sid)
    t.same(await index.add(sid, randomUUID()), { loggedOut: false })

    const quiet = randomUUID()
    t.equal(await index.resolve(quiet, false), null)
    t.same(await index.add(quiet, randomUUID()), { loggedOut: false }, 'a lookup that does not remember leaves no mark')
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
    t.equal(sids.find((entry) => entry.sid === b)?.expiresAt, now + 60_000)
    now += 31_000
    t.same((await index.sidsOf(identity)).map((entry) => entry.sid), [b], 'the expired sid is gone')
    t.same(await index.sidsOf(randomUUID()), [])
  })
}

t.test('redis: every key has a TTL, and a sid\'s keys share a hash tag', async (t) => {
  const backend = all.find((candidate) => candidate.name === 'redis')
  const redis = backend?.redis
  if (backend === undefined || redis === undefined) throw new Error('no redis backend')
  const keys = backend.keys()
  const index = createRedisSessionIndex(redis, keys, options)
  const sid = `odd{sid}%${randomUUID()}`
  const identity = randomUUID()
  await index.resolve(sid, true)
  await index.add(sid, identity)
  const written = await redis.keys(`${keys.prefix}*`)
  t.equal(written.length, 3, 'sid, logged-out mark, identity set')
  for (const key of written) {
    const ttl = await redis.ttl(key)
    t.ok(ttl > 0 && ttl <= 3600, `${key} expires (${ttl}s)`)
  }
  t.equal(keys.key('sid', sid).match(/\{[^}]*\}/)?.[0], keys.key('sid', sid, 'logged-out').match(/\{[^}]*\}/)?.[0])
  t.notMatch(keys.key('sid', sid).slice(keys.prefix.length + 4), /\{.*\{/, 'braces inside a sid are encoded')
})
