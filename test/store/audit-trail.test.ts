import { randomUUID } from 'node:crypto'
import t from 'tap'
import { AUDIT_PER_IDENTITY, auditKeys, type AttemptFailure, type AuditBounds } from '../../src/store/audit-record.js'
import { createMemoryAuditTrail, createRedisAuditTrail } from '../../src/store/audit-trail.js'
import { createMemoryRevocationQueue, createRedisRevocationQueue, type NewJob } from '../../src/store/revocation-queue.js'
import { backends } from '../helpers/backends.js'

const failure = (status: number): AttemptFailure => ({ at: Date.now(), kind: status >= 500 ? 'transient' : 'refused', status, error: `kratos DELETE /admin/identities/{id}/sessions: HTTP ${status}` })
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

for (const backend of await backends(t)) {
  const make = (bounds: AuditBounds = { maxAgeMs: 3_600_000, maxEntries: 1000 }) => {
    const clock = { now: Date.now() }
    const now = (): number => clock.now
    if (backend.redis === undefined) {
      const audit = createMemoryAuditTrail(bounds, now)
      return { queue: createMemoryRevocationQueue(now, audit), audit, clock }
    }
    const keys = backend.keys()
    return { queue: createRedisRevocationQueue(backend.redis, keys, now, bounds), audit: createRedisAuditTrail(backend.redis, keys), clock, indexKey: auditKeys(keys).identity }
  }
  /** Queues one job and claims it. */
  const start = async (queue: ReturnType<typeof make>['queue'], job: NewJob) => {
    await queue.enqueue([job], 60)
    const [claimed] = await queue.claim(1, 10_000)
    if (claimed === undefined) throw new Error('nothing claimed')
    return claimed
  }

  t.test(`${backend.name}: a job done is recorded with its cause, in its identity's records and in the recent ones`, async (t) => {
    const { queue, audit, clock } = make()
    const identityId = randomUUID()
    const cause = { kind: 'backchannel-logout', clientId: 'app-a', jti: randomUUID() } as const
    const claimed = await start(queue, { target: { kind: 'kratos-sessions', identityId }, sid: 'sid-1', cause })
    const [done] = await queue.completeAll([claimed])
    t.match(done?.id, backend.redis === undefined ? /^\d+-\d+$/ : /^\d{13}-\d+$/, 'the record\'s id in the trail')
    const [record] = await audit.ofIdentity(identityId, 10)
    t.same(record, done, 'what the queue returned is what the trail holds')
    t.same(record, {
      id: done?.id,
      job: claimed.job,
      outcome: 'succeeded',
      at: clock.now,
      attempts: 1,
      history: [{ at: clock.now, outcome: 'succeeded' }]
    })
    t.same(record?.job.cause, cause)
    t.same((await audit.since(Date.now() - 60_000, 10)).map((each) => each.id), [done?.id])
    t.same(await audit.ofIdentity(randomUUID(), 10), [], 'another identity has none')
  })

  t.test(`${backend.name}: each failed attempt is in the history, with its kind and status; then how it ended`, async (t) => {
    const { queue, audit, clock } = make()
    const identityId = randomUUID()
    let claimed = await start(queue, { target: { kind: 'kratos-sessions', identityId } })
    const failures = [failure(503), failure(403)]
    for (const attempt of failures) {
      await queue.retry(claimed, clock.now, attempt)
      ;[claimed] = await queue.claim(1, 10_000) as [typeof claimed]
    }
    await queue.release(claimed)
    ;[claimed] = await queue.claim(1, 10_000) as [typeof claimed]
    const final = failure(500)
    const buried = await queue.bury(claimed, final)
    t.same(buried?.history, [...failures, final].map((attempt) => ({ outcome: 'failed', ...attempt })), 'a released attempt is no attempt')
    t.equal(buried?.attempts, 3)
    t.equal(buried?.outcome, 'dead_lettered')
    t.same(await audit.ofIdentity(identityId, 10), [buried])
    t.same((await queue.deadLetters(1))[0]?.lastStatus, 500)

    // An operator's retry, then success: a second record, newest first.
    clock.now += 1000
    const retried = await queue.retryDeadLetter(claimed.job.id, { kind: 'operator-retry', via: 'cli' })
    const again = await queue.claim(1, 10_000)
    const [done] = await queue.completeAll(again)
    t.same(done?.history, [{ at: clock.now, outcome: 'succeeded' }], 'the history starts again with the retry')
    t.same(done?.job, retried)
    const records = await audit.ofIdentity(identityId, 10)
    t.same(records.map((record) => [record.outcome, record.job.cause?.kind]), [['succeeded', 'operator-retry'], ['dead_lettered', undefined]])
    t.same((await audit.ofIdentity(identityId, 1)).map((record) => record.outcome), ['succeeded'], 'the limit')
  })

  t.test(`${backend.name}: a Hydra login session job is an identity's record when the job names it`, async (t) => {
    const { queue, audit } = make()
    const identityId = randomUUID()
    const named = await start(queue, { target: { kind: 'hydra-login-session', sid: 'sid-a' }, sid: 'sid-a', identityId })
    const anonymous = await start(queue, { target: { kind: 'hydra-login-session', sid: 'sid-b' }, sid: 'sid-b' })
    const consent = await start(queue, { target: { kind: 'hydra-consent-sessions', subject: identityId } })
    await queue.completeAll([named, anonymous, consent])
    t.same((await audit.ofIdentity(identityId, 10)).map((record) => record.job.target.kind), ['hydra-consent-sessions', 'hydra-login-session'])
    t.equal((await audit.since(0, 10)).length, 3, 'every record is among the recent ones')
  })

  t.test(`${backend.name}: the trail keeps at most AUDIT_MAX_ENTRIES records, the newest`, async (t) => {
    const { queue, audit } = make({ maxAgeMs: 3_600_000, maxEntries: 3 })
    const identities = Array.from({ length: 5 }, () => randomUUID())
    for (const identityId of identities) await queue.completeAll([await start(queue, { target: { kind: 'kratos-sessions', identityId } })])
    const recent = await audit.since(0, 10)
    t.same(recent.map((record) => record.job.target.kind === 'kratos-sessions' ? record.job.target.identityId : ''), identities.slice(2).reverse())
    t.same(await audit.ofIdentity(identities[0]!, 10), [], 'an identity whose record went has none')
  })

  t.test(`${backend.name}: an identity keeps the ids of its newest ${AUDIT_PER_IDENTITY} records`, async (t) => {
    const made = make({ maxAgeMs: 3_600_000, maxEntries: 10_000 })
    const { queue, audit } = made
    const identityId = randomUUID()
    const count = AUDIT_PER_IDENTITY + 5
    await queue.enqueue(Array.from({ length: count }, () => ({ target: { kind: 'kratos-sessions' as const, identityId } })), 60)
    for (let claims = await queue.claim(200, 10_000); claims.length > 0; claims = await queue.claim(200, 10_000)) await queue.completeAll(claims)
    const records = await audit.ofIdentity(identityId, 5000)
    t.equal(records.length, AUDIT_PER_IDENTITY)
    t.equal((await audit.since(0, 5000)).length, count, 'the trail itself keeps every one')
    if (backend.redis !== undefined && 'indexKey' in made) t.equal(await backend.redis.llen(made.indexKey(identityId)), AUDIT_PER_IDENTITY, 'and the index no more')
  })

  t.test(`${backend.name}: the trail keeps records for AUDIT_MAX_AGE; older ones go`, async (t) => {
    const { queue, audit, clock } = make({ maxAgeMs: 1000, maxEntries: 1000 })
    const old = randomUUID()
    await queue.completeAll([await start(queue, { target: { kind: 'kratos-sessions', identityId: old } })])
    // Redis ages records by its own clock, the clock of the stream's ids; the in-memory trail by the relay's.
    if (backend.redis !== undefined) await sleep(1100)
    clock.now += 1100
    const fresh = randomUUID()
    await queue.completeAll([await start(queue, { target: { kind: 'kratos-sessions', identityId: fresh } })])
    t.same((await audit.since(0, 10)).map((record) => record.job.target.kind === 'kratos-sessions' ? record.job.target.identityId : ''), [fresh])
    t.same(await audit.ofIdentity(old, 10), [])
    t.equal((await audit.ofIdentity(fresh, 10)).length, 1)
  })

  t.test(`${backend.name}: records since a moment, newest first`, async (t) => {
    const { queue, audit, clock } = make()
    const identityId = randomUUID()
    await queue.completeAll([await start(queue, { target: { kind: 'kratos-sessions', identityId } })])
    await sleep(20)
    const moment = Date.now()
    clock.now = moment
    await queue.completeAll([await start(queue, { target: { kind: 'kratos-sessions', identityId } })])
    t.equal((await audit.since(moment - 5, 10)).length, 1)
    t.equal((await audit.ofIdentity(identityId, 10, moment - 5)).length, 1)
    t.equal((await audit.ofIdentity(identityId, 10)).length, 2)
  })
}
