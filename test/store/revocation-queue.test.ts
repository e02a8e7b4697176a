import { randomUUID } from 'node:crypto'
import t from 'tap'
import { ENQUEUE_CHUNK, createMemoryRevocationQueue, createRedisRevocationQueue, type NewJob, type OperatorRetryCause, type RevocationQueue } from '../../src/store/revocation-queue.js'
import type { AttemptFailure } from '../../src/store/audit-record.js'
import { backends } from '../helpers/backends.js'

const failure = (error: string, status?: number): AttemptFailure => ({ at: Date.now(), kind: 'refused', error, ...(status !== undefined ? { status } : {}) })

const revoke = (identityId = randomUUID(), dedupeKey?: string): NewJob => ({
  target: { kind: 'kratos-sessions', identityId },
  ...(dedupeKey !== undefined ? { dedupeKey } : {})
})

for (const backend of await backends(t)) {
  const make = () => {
    const clock = { now: Date.now() }
    const queue: RevocationQueue = backend.redis === undefined
      ? createMemoryRevocationQueue(() => clock.now)
      : createRedisRevocationQueue(backend.redis, backend.keys(), () => clock.now)
    return { queue, clock }
  }

  t.test(`${backend.name}: enqueue, claim, complete`, async (t) => {
    const { queue } = make()
    const identityId = randomUUID()
    const [entry] = await queue.enqueue([{ ...revoke(identityId), sid: 'sid-1' }], 60)
    t.equal(entry?.enqueued, true)
    t.same(await queue.counts(), { waiting: 1, active: 0, dead: 0 })
    const claimed = await queue.claim(10, 30_000)
    t.equal(claimed.length, 1)
    t.same(claimed[0]?.job.target, { kind: 'kratos-sessions', identityId })
    t.equal(claimed[0]?.job.sid, 'sid-1')
    t.equal(claimed[0]?.job.id, entry?.id)
    t.equal(claimed[0]?.attempts, 1)
    t.same(await queue.counts(), { waiting: 0, active: 1, dead: 0 })
    t.same(await queue.claim(10, 30_000), [], 'a claimed job is not handed out twice')
    t.equal(await queue.complete(claimed[0]!), true)
    t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
    t.equal(await queue.complete(claimed[0]!), false, 'completing twice does nothing')
  })

  t.test(`${backend.name}: dedupe keys, all-or-nothing batches`, async (t) => {
    const { queue, clock } = make()
    const first = await queue.enqueue([revoke(undefined, 'sid:x'), revoke(undefined, 'sid:y')], 60)
    t.same(first.map((entry) => entry.enqueued), [true, true])
    const second = await queue.enqueue([revoke(undefined, 'sid:x'), revoke(undefined, 'sid:z')], 60)
    t.same(second.map((entry) => entry.enqueued), [false, true])
    t.equal((await queue.counts()).waiting, 3)
    t.same((await queue.enqueue([revoke(), revoke()], 60)).map((entry) => entry.enqueued), [true, true], 'no key: never a duplicate')
    if (backend.redis === undefined) {
      clock.now += 61_000
      t.same((await queue.enqueue([revoke(undefined, 'sid:x')], 60)).map((entry) => entry.enqueued), [true], 'the key expires')
    }
  })

  t.test(`${backend.name}: claims respect the limit and the due time`, async (t) => {
    const { queue, clock } = make()
    await queue.enqueue([revoke(), revoke(), revoke(), revoke(), revoke()], 60)
    t.equal((await queue.claim(2, 30_000)).length, 2)
    const rest = await queue.claim(10, 30_000)
    t.equal(rest.length, 3)
    const [job] = rest
    t.equal(await queue.retry(job!, clock.now + 5000), true)
    t.equal(await queue.nextDueAt(), clock.now + 5000)
    t.same(await queue.claim(10, 30_000), [], 'not due yet')
    clock.now += 5000
    const again = await queue.claim(10, 30_000)
    t.equal(again.length, 1)
    t.equal(again[0]?.attempts, 2, 'the retry counted as an attempt')
    t.equal(await queue.release(again[0]!), true)
    t.equal((await queue.claim(10, 30_000))[0]?.attempts, 2, 'a released job does not count the attempt')
  })

  t.test(`${backend.name}: a job whose lease ran out goes to the next worker, once`, async (t) => {
    const { queue, clock } = make()
    await queue.enqueue([revoke()], 60)
    const [dead] = await queue.claim(1, 1000)
    clock.now += 999
    t.same(await queue.claim(1, 1000), [], 'still leased')
    clock.now += 2
    const [taken] = await queue.claim(1, 1000)
    t.equal(taken?.job.id, dead?.job.id)
    t.equal(taken?.attempts, 2)
    t.not(taken?.lease, dead?.lease)
    t.equal(await queue.complete(dead!), false, 'the stale holder cannot complete')
    t.equal(await queue.retry(dead!, clock.now), false, 'nor retry')
    t.equal(await queue.bury(dead!, failure('x')), null, 'nor bury')
    t.equal(await queue.complete(taken!), true)
    t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
  })

  t.test(`${backend.name}: dead letters are kept for their retention: age, then count, oldest first`, async (t) => {
    const { queue, clock } = make()
    const bury = async (): Promise<string> => {
      await queue.enqueue([revoke()], 60)
      const [job] = await queue.claim(1, 1000)
      await queue.bury(job!, failure('kratos DELETE: HTTP 403', 403))
      clock.now += 1000
      return job!.job.id
    }
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push(await bury())
    t.same(await queue.trimDeadLetters(clock.now - 10_000, 10, 100), [], 'nothing old enough, nothing beyond the count')
    const tooOld = await queue.trimDeadLetters(clock.now - 4500, 10, 100)
    t.same(tooOld.map((letter) => letter.id), ids.slice(0, 2), 'buried more than 4.5 s ago')
    t.equal(tooOld[0]?.lastError, 'kratos DELETE: HTTP 403', 'what is removed is returned whole, for the log')
    const beyond = await queue.trimDeadLetters(0, 3, 100)
    t.same(beyond.map((letter) => letter.id), ids.slice(2, 3), 'the oldest beyond a count of 3')
    t.same((await queue.deadLetters(10)).map((letter) => letter.id), ids.slice(3))
    t.same(await queue.counts(), { waiting: 0, active: 0, dead: 3 })
    t.same((await queue.trimDeadLetters(clock.now + 1, 0, 2)).map((letter) => letter.id), ids.slice(3, 5), 'at most the limit per call')
  })

  t.test(`${backend.name}: a job that waits for others is claimed only once none of them waits or runs`, async (t) => {
    const { queue, clock } = make()
    await queue.enqueue([revoke(randomUUID(), 'first'), revoke(randomUUID(), 'second')], 60)
    const [last] = await queue.enqueue([{ ...revoke(randomUUID(), 'last'), after: ['first', 'second', 'forgotten'] }], 60)
    const firstBatch = await queue.claim(10, 30_000)
    t.equal(firstBatch.length, 2, 'the two it waits for')
    t.notOk(firstBatch.some((claimed) => claimed.job.id === last?.id), 'not the one that waits')
    clock.now += 1000
    t.same(await queue.claim(10, 30_000), [], 'still waiting while they run')
    t.equal(await queue.complete(firstBatch[0]!), true)
    t.not(await queue.bury(firstBatch[1]!, failure('HTTP 403', 403)), null, 'one done, one dead-lettered')
    clock.now += 1000
    const [next] = await queue.claim(10, 30_000)
    t.equal(next?.job.id, last?.id, 'then it goes ahead')
    t.equal(next?.attempts, 1, 'its waiting counted no attempt')
  })

  t.test(`${backend.name}: a job waits for a job recorded by an earlier enqueue, by its dedupe key`, async (t) => {
    const { queue, clock } = make()
    const [earlier] = await queue.enqueue([revoke(randomUUID(), 'earlier')], 60)
    await queue.enqueue([{ ...revoke(), after: ['earlier'] }], 60)
    const claimed = await queue.claim(10, 30_000)
    t.same(claimed.map((job) => job.job.id), [earlier?.id])
    await queue.complete(claimed[0]!)
    clock.now += 1000
    t.equal((await queue.claim(10, 30_000)).length, 1)
  })

  t.test(`${backend.name}: dead letters keep the job and its last error`, async (t) => {
    const { queue } = make()
    const identityId = randomUUID()
    await queue.enqueue([revoke(identityId)], 60)
    const [job] = await queue.claim(1, 1000)
    t.ok(await queue.bury(job!, failure('kratos DELETE: HTTP 403', 403)))
    t.same(await queue.counts(), { waiting: 0, active: 0, dead: 1 })
    const [letter] = await queue.deadLetters(10)
    t.equal(letter?.lastError, 'kratos DELETE: HTTP 403')
    t.equal(letter?.attempts, 1)
    t.same(letter?.target, { kind: 'kratos-sessions', identityId })
    t.equal(await queue.nextDueAt(), null)
  })

  /** Queues, claims and buries one job per identity, a second apart; their ids, oldest first. */
  const buryEach = async (queue: RevocationQueue, clock: { now: number }, jobs: NewJob[]): Promise<string[]> => {
    const ids: string[] = []
    for (const job of jobs) {
      await queue.enqueue([job], 60)
      const [claimed] = await queue.claim(1, 1000)
      await queue.bury(claimed!, failure('kratos DELETE /admin/identities/{id}/sessions: HTTP 503', 503))
      ids.push(claimed!.job.id)
      clock.now += 1000
    }
    return ids
  }
  const fromCli: OperatorRetryCause = { kind: 'operator-retry', via: 'cli' }

  t.test(`${backend.name}: dead letters are read in pages, oldest first, from a cursor that outlives its letter`, async (t) => {
    const { queue, clock } = make()
    const ids = await buryEach(queue, clock, [revoke(), revoke(), revoke(), revoke(), revoke()])
    const first = await queue.deadLetterPage(2)
    t.same(first.letters.map((letter) => letter.id), ids.slice(0, 2))
    t.same([first.total, first.offset], [5, 0])
    const last = first.letters[1]!
    const second = await queue.deadLetterPage(2, { buriedAt: last.buriedAt, id: last.id })
    t.same(second.letters.map((letter) => letter.id), ids.slice(2, 4))
    t.equal(second.offset, 2)
    t.ok(await queue.dropDeadLetter(ids[3]!), 'the cursor\'s letter goes')
    const third = await queue.deadLetterPage(2, { buriedAt: second.letters[1]!.buriedAt, id: ids[3]! })
    t.same(third.letters.map((letter) => letter.id), ids.slice(4), 'the page goes on after where it was')
    t.same([third.total, third.offset], [4, 3])
    t.same((await queue.deadLetterPage(10, { buriedAt: clock.now, id: 'z' })).letters, [], 'past the end')
    t.equal(third.letters[0]?.lastStatus, 503, 'a dead letter keeps its last status')
    t.equal(third.letters[0]?.lastKind, 'refused')
  })

  t.test(`${backend.name}: dead letters buried in the same millisecond are paged by id`, async (t) => {
    const { queue } = make() // its clock stands still unless moved
    const ids: string[] = []
    for (let i = 0; i < 4; i++) {
      await queue.enqueue([revoke()], 60)
      const [claimed] = await queue.claim(1, 1000)
      await queue.bury(claimed!, failure('x'))
      ids.push(claimed!.job.id)
    }
    const seen: string[] = []
    let cursor: { buriedAt: number, id: string } | undefined
    for (;;) {
      const page = await queue.deadLetterPage(1, cursor)
      const [letter] = page.letters
      if (letter === undefined) break
      seen.push(letter.id)
      cursor = { buriedAt: letter.buriedAt, id: letter.id }
    }
    t.same(seen, [...ids].sort(), 'each once, by id')
  })

  t.test(`${backend.name}: a dead letter retried goes back to the queue, due now, its attempts and age afresh, its first cause kept`, async (t) => {
    const { queue, clock } = make()
    const identityId = randomUUID()
    const cause = { kind: 'backchannel-logout', clientId: 'app-a', jti: 'jti-1' } as const
    const [id] = await buryEach(queue, clock, [{ ...revoke(identityId), sid: 'sid-1', cause }])
    const [before] = await queue.deadLetters(1)
    clock.now += 5000
    const job = await queue.retryDeadLetter(id!, fromCli)
    t.same(job, { id, target: { kind: 'kratos-sessions', identityId }, createdAt: before!.createdAt, sid: 'sid-1', cause: { ...fromCli, original: cause }, retriedAt: clock.now },
      'the job without the dead letter\'s fields')
    t.same(await queue.counts(), { waiting: 1, active: 0, dead: 0 })
    t.equal(await queue.nextDueAt(), clock.now)
    const [claimed] = await queue.claim(1, 1000)
    t.same(claimed?.job, job)
    t.equal(claimed?.attempts, 1, 'attempts start again')
    await queue.bury(claimed!, failure('again'))
    const again = await queue.retryDeadLetter(id!, { kind: 'operator-retry', via: 'admin-api', keyFingerprint: '0123456789abcdef' })
    t.same(again?.cause, { kind: 'operator-retry', via: 'admin-api', keyFingerprint: '0123456789abcdef', original: cause }, 'a retry of a retry keeps the first cause')
    t.equal(await queue.retryDeadLetter(randomUUID(), fromCli), null, 'no such dead letter')
    t.equal(await queue.retryDeadLetter(id!, fromCli), null, 'a live job is no dead letter')
    t.same(await queue.counts(), { waiting: 1, active: 0, dead: 0 })
  })

  t.test(`${backend.name}: a dead letter without a recorded cause is retried by the operator alone`, async (t) => {
    const { queue, clock } = make()
    const [id] = await buryEach(queue, clock, [revoke()])
    const job = await queue.retryDeadLetter(id!, fromCli)
    t.same(job?.cause, fromCli)
  })

  t.test(`${backend.name}: every dead letter buried before a moment is retried, oldest first, a batch at a time`, async (t) => {
    const { queue, clock } = make()
    const ids = await buryEach(queue, clock, [revoke(), revoke(), revoke()])
    const [, second] = await queue.deadLetters(3)
    const batch = await queue.retryDeadLetters(second!.buriedAt, fromCli, 1)
    t.same(batch.map((job) => job.id), ids.slice(0, 1), 'the limit')
    const rest = await queue.retryDeadLetters(second!.buriedAt, fromCli, 10)
    t.same(rest.map((job) => job.id), ids.slice(1, 2), 'none buried after the moment')
    t.same(await queue.counts(), { waiting: 2, active: 0, dead: 1 })
  })

  t.test(`${backend.name}: a dead letter dropped is gone for good; a live job is never dropped`, async (t) => {
    const { queue, clock } = make()
    const identityId = randomUUID()
    const [id] = await buryEach(queue, clock, [revoke(identityId)])
    const dropped = await queue.dropDeadLetter(id!)
    t.same(dropped?.target, { kind: 'kratos-sessions', identityId })
    t.equal(dropped?.lastError, 'kratos DELETE /admin/identities/{id}/sessions: HTTP 503')
    t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
    t.same(await queue.deadLetters(10), [])
    t.equal(await queue.dropDeadLetter(id!), null, 'twice: nothing')
    const [live] = await queue.enqueue([revoke()], 60)
    t.equal(await queue.dropDeadLetter(live!.id), null, 'a queued job is no dead letter')
    t.equal((await queue.claim(1, 1000))[0]?.job.id, live?.id, 'and is still there')
  })

  t.test(`${backend.name}: accepting a logout token queues its job and consumes its jti, once per issuer`, async (t) => {
    const { queue } = make()
    const jti = randomUUID()
    const job = revoke(randomUUID(), 'sid:s1')
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti, rememberSeconds: 60, job }), 'queued')
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti, rememberSeconds: 60, job }), 'replay', 'the same jti again')
    t.equal((await queue.counts()).waiting, 1, 'a replay queues nothing')
    t.equal(await queue.acceptLogout({ issuer: 'https://b/', jti, rememberSeconds: 60, job }), 'duplicate', 'another issuer has its own jti space; the sid dedupes')
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti: randomUUID(), rememberSeconds: 60, job: revoke(randomUUID(), 'sid:s1') }), 'duplicate',
      'another client\'s token of the same logout')
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti: randomUUID(), rememberSeconds: 60 }), 'accepted', 'nothing to queue')
    t.equal((await queue.counts()).waiting, 1)
  })

  t.test(`${backend.name}: a consumed jti is forgotten after its time`, async (t) => {
    const { queue, clock } = make()
    const jti = randomUUID()
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti, rememberSeconds: 1 }), 'accepted')
    clock.now += 1500
    if (backend.redis !== undefined) await new Promise((resolve) => setTimeout(resolve, 1100))
    t.equal(await queue.acceptLogout({ issuer: 'https://a/', jti, rememberSeconds: 1 }), 'accepted')
  })

  t.test(`${backend.name}: several jobs are completed in one step, only those still held`, async (t) => {
    const { queue, clock } = make()
    await queue.enqueue([revoke(), revoke(), revoke()], 60)
    const claims = [...await queue.claim(2, 10_000), ...await queue.claim(1, 1000)]
    clock.now += 1001
    const [retaken] = await queue.claim(1, 1000)
    t.ok(retaken, 'one lease ran out and the job went to another worker')
    const records = await queue.completeAll(claims)
    t.same(records.map((record) => record.job.id), claims.slice(0, 2).map((claim) => claim.job.id), 'the two still held are completed, each with its record')
    t.ok(records.every((record) => record.outcome === 'succeeded' && record.at === clock.now))
    t.same(await queue.completeAll([]), [])
    t.same(await queue.counts(), { waiting: 0, active: 1, dead: 0 })
  })
}

t.test('a large enqueue is recorded in chunks: no script holds Redis for all of it', async (t) => {
  const backend = (await backends(t)).find((candidate) => candidate.name === 'redis')
  const redis = backend?.redis
  if (backend === undefined || redis === undefined) throw new Error('no redis backend')
  const queue = createRedisRevocationQueue(redis, backend.keys())
  await queue.enqueue([revoke()], 60) // loads the script
  const scriptCalls = async (): Promise<number> => {
    const stats = String(await redis.info('commandstats'))
    return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
  }
  const before = await scriptCalls()
  const jobs = Array.from({ length: 2 * ENQUEUE_CHUNK + 1 }, () => revoke())
  const results = await queue.enqueue(jobs, 60)
  t.equal(await scriptCalls() - before, 3, `${jobs.length} jobs in three scripts of at most ${ENQUEUE_CHUNK}`)
  t.equal(results.filter((result) => result.enqueued).length, jobs.length)
  t.same(await queue.counts(), { waiting: jobs.length + 1, active: 0, dead: 0 })
})
