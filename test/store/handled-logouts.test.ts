import { randomUUID } from 'node:crypto'
import t from 'tap'
import { ENQUEUE_CHUNK, createMemoryRevocationQueue, createRedisRevocationQueue, type NewJob, type RevocationQueue } from '../../src/store/revocation-queue.js'
import { backends } from '../helpers/backends.js'

// The relay's own Hydra revocations: a hydra-login-session job may mark its sid, in the same atomic
// step, so that the back-channel logouts Hydra sends for it are answered as already handled.

const hydraJob = (sid: string, handledLogoutSeconds?: number, dedupeKey = `credentials:hydra-login-session:${sid}`): NewJob => ({
  target: { kind: 'hydra-login-session', sid },
  sid,
  cause: { kind: 'credentials-changed', flow: 'settings', method: 'password' },
  dedupeKey,
  ...(handledLogoutSeconds !== undefined ? { handledLogoutSeconds } : {})
})

/** What the logout use case hands the queue for a token of `sid` that resolved to an identity. */
const token = (sid: string, jti = randomUUID()) => ({
  issuer: 'https://hydra.example/',
  jti,
  rememberSeconds: 60,
  sid,
  job: { target: { kind: 'kratos-sessions', identityId: randomUUID() }, sid, dedupeKey: `sid:${sid}` } satisfies NewJob
})

for (const backend of await backends(t)) {
  const make = () => {
    const clock = { now: Date.now() }
    const queue: RevocationQueue = backend.redis === undefined
      ? createMemoryRevocationQueue(() => clock.now)
      : createRedisRevocationQueue(backend.redis, backend.keys(), () => clock.now)
    return { queue, clock }
  }

  t.test(`${backend.name}: a token for a marked sid is handled: its jti consumed, nothing queued`, async (t) => {
    const { queue } = make()
    const [marked, unmarked] = [randomUUID(), randomUUID()]
    t.same((await queue.enqueue([hydraJob(marked, 3600)], 10)).map((entry) => entry.enqueued), [true])
    const first = token(marked)
    t.equal(await queue.acceptLogout(first), 'handled', 'Hydra\'s echo of the relay\'s own revocation')
    t.equal(await queue.acceptLogout(first), 'replay', 'replay protection stays')
    t.equal(await queue.acceptLogout(token(marked)), 'handled', 'another client of the same sid')
    t.same(await queue.counts(), { waiting: 1, active: 0, dead: 0 }, 'only the Hydra job: no Kratos revocation')
    t.equal(await queue.acceptLogout(token(unmarked)), 'queued', 'a sid the relay did not revoke: a logout as ever')
    t.equal(await queue.acceptLogout({ issuer: 'https://hydra.example/', jti: randomUUID(), rememberSeconds: 60 }), 'accepted', 'a token without sid matches no mark')
  })

  t.test(`${backend.name}: the mark exists before the job can be claimed, and names it`, async (t) => {
    const { queue } = make()
    const sid = randomUUID()
    await queue.enqueue([hydraJob(sid, 3600)], 10)
    const [claimed] = await queue.claim(1, 30_000)
    t.same(claimed?.job.target, { kind: 'hydra-login-session', sid })
    t.same(claimed?.job.cause, { kind: 'credentials-changed', flow: 'settings', method: 'password' }, 'the cause is recorded with the job')
    t.equal(await queue.acceptLogout(token(sid)), 'handled', 'while the job runs')
    t.equal(await queue.complete(claimed!), true)
    t.equal(await queue.acceptLogout(token(sid)), 'handled', 'after it is done')
  })

  t.test(`${backend.name}: jobs without a mark, or of another kind, mark nothing`, async (t) => {
    const { queue } = make()
    const [admin, zero, kratos] = [randomUUID(), randomUUID(), randomUUID()]
    await queue.enqueue([
      hydraJob(admin, undefined, `admin:hydra-login-session:${admin}`),
      hydraJob(zero, 0),
      { target: { kind: 'kratos-sessions', identityId: randomUUID() }, sid: kratos, handledLogoutSeconds: 3600 }
    ], 10)
    for (const sid of [admin, zero, kratos]) t.equal(await queue.acceptLogout(token(sid)), 'queued', sid)
  })

  t.test(`${backend.name}: a repeated enqueue keeps the mark on the job already queued`, async (t) => {
    const { queue } = make()
    const sid = randomUUID()
    const [first] = await queue.enqueue([hydraJob(sid, 3600)], 10)
    const [second] = await queue.enqueue([hydraJob(sid, 3600)], 10)
    t.equal(first?.enqueued, true)
    t.equal(second?.enqueued, false, 'deduped')
    t.equal(await queue.acceptLogout(token(sid)), 'handled')
    // The mark names the job that runs: when that one is given up, the mark no longer counts.
    const [claimed] = await queue.claim(1, 30_000)
    t.equal(claimed?.job.id, first?.id)
    t.not(await queue.bury(claimed!, { at: Date.now(), kind: 'refused', error: 'Hydra refused' }), null)
    t.equal(await queue.acceptLogout(token(sid)), 'queued')
  })

  t.test(`${backend.name}: a mark whose job became a dead letter is no mark: Hydra never revoked the sid for the relay`, async (t) => {
    const { queue } = make()
    const [dead, alive] = [randomUUID(), randomUUID()]
    await queue.enqueue([hydraJob(dead, 3600), hydraJob(alive, 3600)], 10)
    const claims = await queue.claim(2, 30_000)
    const deadClaim = claims.find((claim) => claim.job.sid === dead)
    t.not(await queue.bury(deadClaim!, { at: Date.now(), kind: 'refused', error: 'given up' }), null)
    t.equal(await queue.acceptLogout(token(dead)), 'queued', 'a later logout of that sid is a real one')
    t.equal(await queue.acceptLogout(token(alive)), 'handled')
  })

  t.test(`${backend.name}: the mark expires after its time`, async (t) => {
    const { queue, clock } = make()
    const sid = randomUUID()
    await queue.enqueue([hydraJob(sid, 1)], 10)
    clock.now += 1500
    if (backend.redis !== undefined) await new Promise((resolve) => setTimeout(resolve, 1100))
    t.equal(await queue.acceptLogout(token(sid)), 'queued')
  })

  t.test(`${backend.name}: every sid of a large enqueue is marked, chunk by chunk`, async (t) => {
    const { queue } = make()
    const sids = Array.from({ length: 2 * ENQUEUE_CHUNK + 7 }, () => randomUUID())
    const results = await queue.enqueue(sids.map((sid) => hydraJob(sid, 3600)), 10)
    t.equal(results.filter((result) => result.enqueued).length, sids.length)
    const outcomes = await Promise.all(sids.map(async (sid) => await queue.acceptLogout(token(sid))))
    t.same([...new Set(outcomes)], ['handled'])
    t.equal((await queue.counts()).waiting, sids.length, 'no Kratos job among them')
  })
}
