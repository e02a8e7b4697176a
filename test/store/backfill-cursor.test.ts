import t from 'tap'
import {
  BackfillLockLost, CURSOR_TTL_SECONDS, createRedisBackfillCursor, emptyCounts, parseCursor, type BackfillCursor
} from '../../src/store/backfill-cursor.js'
import { backends } from '../helpers/backends.js'

const cursor: BackfillCursor = {
  startedAt: 1_700_000_000_000,
  updatedAt: 1_700_000_060_000,
  page: 'eyJvZmZzZXQiOiIyNTAiLCJ2IjoyfQ',
  after: '0c6f1b0e-3f5a-4d3b-9d38-6f1f1bde2a41',
  failed: ['9a71c3c2-7d0e-4b8e-8f43-2b8f0f6f4e11'],
  totals: { ...emptyCounts(), identities: 250, sidsIndexed: 120, errors: 1 }
}

for (const backend of (await backends(t)).filter((candidate) => candidate.redis !== undefined)) {
  const redis = backend.redis
  if (redis === undefined) continue

  t.test(`${backend.name}: saved under the lock, read back, with a TTL; cleared`, async (t) => {
    const keys = backend.keys()
    const { store, lock, key } = createRedisBackfillCursor(redis, keys)
    t.equal(key, `${keys.prefix}backfill:{cursor}`)
    t.equal(await store.load(), undefined, 'no cursor yet')
    await t.rejects(store.save(cursor), BackfillLockLost, 'no write without the lock')
    t.equal(await lock.acquire(), true)
    await store.save(cursor)
    t.same(await store.load(), cursor)
    const ttl = await redis.ttl(key)
    t.ok(ttl > CURSOR_TTL_SECONDS - 10 && ttl <= CURSOR_TTL_SECONDS, `expires in ${ttl} s`)
    await store.clear()
    t.equal(await store.load(), undefined)
    await lock.release()
    t.equal(await redis.exists(`${key}:lock`), 0, 'the lock is gone')
  })

  t.test(`${backend.name}: one run holds the lock; a run whose lock expired cannot move the cursor`, async (t) => {
    const keys = backend.keys()
    const first = createRedisBackfillCursor(redis, keys, { lockTtlMs: 300 })
    const second = createRedisBackfillCursor(redis, keys, { lockTtlMs: 300 })
    t.equal(await first.lock.acquire(), true)
    t.equal(await second.lock.acquire(), false, 'taken')
    t.equal(await first.lock.renew(), true)
    await first.store.save(cursor)
    await new Promise((resolve) => setTimeout(resolve, 400))
    t.equal(await second.lock.acquire(), true, 'the first run\'s lock expired')
    await t.rejects(first.store.save({ ...cursor, updatedAt: cursor.updatedAt + 1 }), BackfillLockLost)
    await t.rejects(first.store.clear(), BackfillLockLost)
    t.equal(await first.lock.renew(), false)
    await first.lock.release()
    t.equal(await second.lock.renew(), true, 'releasing a lost lock leaves the holder\'s')
    t.same(await second.store.load(), cursor, 'the cursor is as the first run left it')
    await second.lock.release()
  })
}

t.test('a cursor that is not one reads as none', async (t) => {
  t.equal(parseCursor('not json'), undefined)
  t.equal(parseCursor('{"startedAt":1}'), undefined)
  t.equal(parseCursor(JSON.stringify({ ...cursor, totals: { identities: 'many' } })), undefined)
  t.same(parseCursor(JSON.stringify({ ...cursor, listed: true })), { ...cursor, listed: true })
})
