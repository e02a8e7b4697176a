import { randomUUID } from 'node:crypto'
import t from 'tap'
import { isRelayError } from '../../src/errors.js'
import {
  GLOBAL_LOGOUT_DEDUPE_SECONDS, knownSessions, logOutEverywhere, parseGlobalLogoutBody, parseIdentityId, type GlobalLogoutDeps
} from '../../src/usecases/global-logout.js'
import { createMemoryRevocationQueue, createRedisRevocationQueue, type NewJob, type RevocationQueue } from '../../src/store/revocation-queue.js'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex } from '../../src/store/session-index.js'
import { backends } from '../helpers/backends.js'

const cause = { kind: 'admin-api', keyFingerprint: '0123456789abcdef' } as const

function codeOf (fn: () => unknown): { code: string, field: string | undefined } | undefined {
  try {
    fn()
  } catch (err) {
    if (isRelayError(err)) return { code: err.code, field: err.field }
    throw err
  }
  return undefined
}

t.test('the id must be a Kratos identity id; it is kept in lower case', async (t) => {
  const id = randomUUID()
  t.equal(parseIdentityId(id.toUpperCase()), id)
  for (const bad of ['alice', '', `${id}0`, id.replace(/-/g, ''), undefined, 42]) {
    t.same(codeOf(() => parseIdentityId(bad)), { code: 'ERR_ADMIN_REQUEST_INVALID', field: 'id' }, String(bad))
  }
})

t.test('the body is optional; revoke_consents is a boolean; anything else names its field', async (t) => {
  t.same(parseGlobalLogoutBody(undefined), { revokeConsents: false })
  t.same(parseGlobalLogoutBody({}), { revokeConsents: false })
  t.same(parseGlobalLogoutBody({ revoke_consents: true }), { revokeConsents: true })
  t.same(parseGlobalLogoutBody({ revoke_consents: false }), { revokeConsents: false })
  const cases: Array<[unknown, string]> = [
    [null, 'body'], [[], 'body'], ['x', 'body'], [true, 'body'],
    [{ revoke_consents: 'true' }, 'revoke_consents'], [{ revoke_consents: null }, 'revoke_consents'],
    [{ revokeConsents: true }, 'revokeConsents']
  ]
  for (const [body, field] of cases) {
    t.same(codeOf(() => parseGlobalLogoutBody(body)), { code: 'ERR_ADMIN_REQUEST_INVALID', field }, JSON.stringify(body))
  }
})

for (const backend of await backends(t)) {
  const setup = (dedupeSeconds?: number) => {
    const clock = { now: Date.now() }
    const now = (): number => clock.now
    const options = { sidTtlSeconds: 3600, unresolvedSidTtlSeconds: 600, clock: now }
    let index: SessionIndex
    let queue: RevocationQueue
    if (backend.redis === undefined) {
      index = createMemorySessionIndex(options)
      queue = createMemoryRevocationQueue(now)
    } else {
      const keys = backend.keys()
      index = createRedisSessionIndex(backend.redis, keys, options)
      queue = createRedisRevocationQueue(backend.redis, keys, now)
    }
    const enqueueCalls: Array<readonly NewJob[]> = []
    let wakes = 0
    const deps: GlobalLogoutDeps = {
      index,
      queue: {
        enqueue: async (jobs, ttl) => {
          enqueueCalls.push(jobs)
          return await queue.enqueue(jobs, ttl)
        }
      },
      onEnqueued: () => { wakes++ },
      ...(dedupeSeconds !== undefined ? { dedupeSeconds } : {})
    }
    return { clock, index, queue, deps, enqueueCalls, wakes: () => wakes }
  }

  t.test(`${backend.name}: one atomic enqueue of a Hydra step per sid and the Kratos step`, async (t) => {
    const { index, queue, deps, enqueueCalls, wakes } = setup()
    const identityId = randomUUID()
    const sids = ['sid-b', 'sid-a', 'sid-c']
    for (const sid of sids) await index.add(sid, identityId)
    await index.add('sid-other', randomUUID())

    const result = await logOutEverywhere(deps, { identityId, revokeConsents: false, cause })
    t.same(result.sids, ['sid-a', 'sid-b', 'sid-c'])
    t.same(result.steps, [
      { target: { kind: 'hydra-login-session', sid: 'sid-a' }, status: 'queued' },
      { target: { kind: 'hydra-login-session', sid: 'sid-b' }, status: 'queued' },
      { target: { kind: 'hydra-login-session', sid: 'sid-c' }, status: 'queued' },
      { target: { kind: 'kratos-sessions', identityId }, status: 'queued' }
    ])
    t.equal(enqueueCalls.length, 1, 'every step in one enqueue: all recorded, or none')
    t.equal(wakes(), 1, 'the worker is woken')
    const claimed = await queue.claim(10, 30_000)
    t.same(claimed.map((job) => job.job.target).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
      { kind: 'hydra-login-session', sid: 'sid-a' },
      { kind: 'hydra-login-session', sid: 'sid-b' },
      { kind: 'hydra-login-session', sid: 'sid-c' },
      { kind: 'kratos-sessions', identityId }
    ], 'the queue holds exactly these jobs')
    t.ok(claimed.every((job) => job.job.cause?.kind === 'admin-api' && job.job.cause.keyFingerprint === cause.keyFingerprint), 'each job records who asked')
    t.same(claimed.filter((job) => job.job.target.kind === 'hydra-login-session').map((job) => job.job.sid).sort(), ['sid-a', 'sid-b', 'sid-c'], 'each Hydra job names its sid for the logs')
    t.ok(claimed.every((job) => job.job.target.kind !== 'hydra-login-session' || job.job.identityId === identityId), 'and its identity, for the audit trail')
  })

  t.test(`${backend.name}: revokeConsents adds the consent step; an unknown identity gets the Kratos step alone`, async (t) => {
    const { index, deps } = setup()
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    const withConsents = await logOutEverywhere(deps, { identityId, revokeConsents: true, cause })
    t.same(withConsents.steps.map((step) => step.target), [
      { kind: 'hydra-login-session', sid: 'sid-1' },
      { kind: 'kratos-sessions', identityId },
      { kind: 'hydra-consent-sessions', subject: identityId }
    ])
    const stranger = randomUUID()
    const unknown = await logOutEverywhere(deps, { identityId: stranger, revokeConsents: false, cause })
    t.same(unknown, { identityId: stranger, sids: [], steps: [{ target: { kind: 'kratos-sessions', identityId: stranger }, status: 'queued' }] })
  })

  t.test(`${backend.name}: a repeat in the same state queues nothing; a new login or the passing of time makes it act`, async (t) => {
    const { clock, index, queue, deps, wakes } = setup(backend.redis === undefined ? GLOBAL_LOGOUT_DEDUPE_SECONDS : 1)
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    await logOutEverywhere(deps, { identityId, revokeConsents: true, cause })
    const repeat = await logOutEverywhere(deps, { identityId, revokeConsents: true, cause })
    t.same(repeat.steps.map((step) => step.status), ['already_queued', 'already_queued', 'already_queued'])
    t.equal(wakes(), 1, 'nothing new: the worker is not woken')
    t.equal((await queue.counts()).waiting, 3)

    await index.add('sid-2', identityId)
    const afterLogin = await logOutEverywhere(deps, { identityId, revokeConsents: true, cause })
    t.same(afterLogin.steps.map((step) => [step.target.kind, step.status]), [
      ['hydra-login-session', 'already_queued'],
      ['hydra-login-session', 'queued'],
      ['kratos-sessions', 'queued'],
      ['hydra-consent-sessions', 'queued']
    ], 'a new sid changes the state: Kratos and consents are revoked again')

    if (backend.redis === undefined) {
      clock.now += GLOBAL_LOGOUT_DEDUPE_SECONDS * 1000 + 1
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1100))
    }
    const later = await logOutEverywhere(deps, { identityId, revokeConsents: true, cause })
    t.same(later.steps.map((step) => step.status), ['queued', 'queued', 'queued', 'queued'], 'a later call acts again')
    t.equal((await queue.counts()).waiting, 10)
  })

  t.test(`${backend.name}: a store failure throws and queues nothing`, async (t) => {
    const { index, deps, wakes } = setup()
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    const failing: GlobalLogoutDeps = { ...deps, queue: { enqueue: async () => { throw new Error('store down') } } }
    await t.rejects(logOutEverywhere(failing, { identityId, revokeConsents: false, cause }), /store down/)
    t.equal(wakes(), 0)
  })

  t.test(`${backend.name}: known sessions, soonest expiry first, as ISO 8601`, async (t) => {
    const { clock, index } = setup()
    const identityId = randomUUID()
    // The Redis index keeps expiry to the second.
    const start = clock.now = Math.floor(clock.now / 1000) * 1000
    await index.add('late', identityId)
    clock.now -= 60_000
    await index.add('early', identityId)
    clock.now = start
    t.same(await knownSessions({ index }, identityId), [
      { sid: 'early', expiresAt: new Date(start - 60_000 + 3600_000).toISOString() },
      { sid: 'late', expiresAt: new Date(start + 3600_000).toISOString() }
    ])
    t.same(await knownSessions({ index }, randomUUID()), [])
  })
}
