import { randomUUID } from 'node:crypto'
import t from 'tap'
import { isRelayError } from '../../src/errors.js'
import {
  CREDENTIALS_CHANGED_DEDUPE_SECONDS, MAX_METHOD_LENGTH, handledLogoutSeconds, logOutAfterCredentialsChange, parseCredentialsChangedBody,
  type CredentialsChangedDeps
} from '../../src/usecases/credentials-changed.js'
import { ENQUEUE_CHUNK, createMemoryRevocationQueue, createRedisRevocationQueue, type NewJob, type RevocationQueue } from '../../src/store/revocation-queue.js'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex } from '../../src/store/session-index.js'
import { backends } from '../helpers/backends.js'

function fieldOf (fn: () => unknown): { code: string, field: string | undefined } | undefined {
  try {
    fn()
  } catch (err) {
    if (isRelayError(err)) return { code: err.code, field: err.field }
    throw err
  }
  return undefined
}

t.test('the body: identity_id, flow settings or recovery, an optional method; each error names its field', async (t) => {
  const id = randomUUID()
  t.same(parseCredentialsChangedBody({ identity_id: id.toUpperCase(), flow: 'settings', method: 'password' }), { identityId: id, flow: 'settings', method: 'password' })
  t.same(parseCredentialsChangedBody({ identity_id: id, flow: 'recovery' }), { identityId: id, flow: 'recovery' }, 'no method')
  t.same(parseCredentialsChangedBody({ identity_id: id, flow: 'recovery', method: null, extra: 1 }), { identityId: id, flow: 'recovery' }, 'a null method; other members ignored')
  t.same(parseCredentialsChangedBody({ identity_id: id, flow: 'settings', method: 'm'.repeat(MAX_METHOD_LENGTH) }).method?.length, MAX_METHOD_LENGTH)
  const cases: Array<[unknown, string]> = [
    [null, 'body'], [[id], 'body'], ['settings', 'body'],
    [{ flow: 'settings' }, 'identity_id'], [{ identity_id: '', flow: 'settings' }, 'identity_id'], [{ identity_id: 'alice', flow: 'settings' }, 'identity_id'],
    [{ identity_id: id }, 'flow'], [{ identity_id: id, flow: 'login' }, 'flow'], [{ identity_id: id, flow: 'Settings' }, 'flow'], [{ identity_id: id, flow: ['settings'] }, 'flow'],
    [{ identity_id: id, flow: 'settings', method: '' }, 'method'], [{ identity_id: id, flow: 'settings', method: 7 }, 'method'],
    [{ identity_id: id, flow: 'settings', method: 'm'.repeat(MAX_METHOD_LENGTH + 1) }, 'method']
  ]
  for (const [body, field] of cases) t.same(fieldOf(() => parseCredentialsChangedBody(body)), { code: 'ERR_HOOK_BODY_INVALID', field }, JSON.stringify(body))
})

t.test('a sid stays marked while its job may still run, and for the life of the tokens Hydra then sends', async (t) => {
  const seconds = handledLogoutSeconds({ maxAgeMs: 86_400_000, backoffMaxMs: 900_000, leaseMs: 30_000 }, { maxAgeSeconds: 300, clockToleranceSeconds: 30 })
  t.equal(seconds, 86_400 + 900 + 30 + (300 + 4 * 30 + 1))
  t.equal(handledLogoutSeconds({ maxAgeMs: 60_500, backoffMaxMs: 10, leaseMs: 1000 }, { maxAgeSeconds: 1, clockToleranceSeconds: 0 }), 62 + 2, 'whole seconds, rounded up')
})

for (const backend of await backends(t)) {
  const setup = (options: { revokeConsents?: boolean, dedupeSeconds?: number } = {}) => {
    const clock = { now: Date.now() }
    const now = (): number => clock.now
    const indexOptions = { sidTtlSeconds: 3600, unresolvedSidTtlSeconds: 600, clock: now }
    let index: SessionIndex
    let queue: RevocationQueue
    if (backend.redis === undefined) {
      index = createMemorySessionIndex(indexOptions)
      queue = createMemoryRevocationQueue(now)
    } else {
      const keys = backend.keys()
      index = createRedisSessionIndex(backend.redis, keys, indexOptions)
      queue = createRedisRevocationQueue(backend.redis, keys, now)
    }
    const enqueueCalls: Array<readonly NewJob[]> = []
    let wakes = 0
    const deps: CredentialsChangedDeps = {
      index,
      queue: {
        enqueue: async (jobs, ttl) => {
          enqueueCalls.push(jobs)
          return await queue.enqueue(jobs, ttl)
        }
      },
      onEnqueued: () => { wakes++ },
      revokeConsents: options.revokeConsents ?? false,
      markSeconds: 3600,
      ...(options.dedupeSeconds !== undefined ? { dedupeSeconds: options.dedupeSeconds } : {})
    }
    return { clock, index, queue, deps, enqueueCalls, wakes: () => wakes }
  }
  /** A token of `sid` as the logout use case hands it to the queue. */
  const echo = (queue: RevocationQueue, sid: string) => queue.acceptLogout({
    issuer: 'https://hydra.example/', jti: randomUUID(), rememberSeconds: 60, sid, job: { target: { kind: 'kratos-sessions', identityId: randomUUID() }, sid, dedupeKey: `sid:${sid}` }
  })

  t.test(`${backend.name}: one enqueue of a Hydra revocation per sid, each sid marked, no Kratos revocation`, async (t) => {
    const { index, queue, deps, enqueueCalls, wakes } = setup()
    const identityId = randomUUID()
    for (const sid of ['sid-b', 'sid-a']) await index.add(sid, identityId)
    await index.add('sid-other', randomUUID())

    const result = await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings', method: 'password' })
    t.same(result, { identityId, sids: ['sid-a', 'sid-b'], steps: 2, queued: 2 })
    t.equal(enqueueCalls.length, 1)
    t.equal(wakes(), 1)
    const claimed = await queue.claim(10, 30_000)
    t.same(claimed.map((job) => job.job.target).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
      { kind: 'hydra-login-session', sid: 'sid-a' },
      { kind: 'hydra-login-session', sid: 'sid-b' }
    ], 'no kratos-sessions job: Kratos\' own hook ends its sessions')
    t.ok(claimed.every((job) => JSON.stringify(job.job.cause) === JSON.stringify({ kind: 'credentials-changed', flow: 'settings', method: 'password' })), 'each job records the trigger')
    t.equal(await echo(queue, 'sid-a'), 'handled', 'Hydra\'s back-channel logout for a revoked sid is the relay\'s own')
    t.equal(await echo(queue, 'sid-other'), 'queued', 'another identity\'s sid is not marked')
  })

  t.test(`${backend.name}: a recovery without a method; consents when configured, also with no sid indexed`, async (t) => {
    const { clock, index, queue, deps } = setup({ revokeConsents: true })
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    t.same(await logOutAfterCredentialsChange(deps, { identityId, flow: 'recovery' }), { identityId, sids: ['sid-1'], steps: 2, queued: 2 })
    const claimed = await queue.claim(10, 30_000)
    t.same(claimed.map((job) => job.job.target.kind), ['hydra-login-session'], 'the consents wait for the login session: Hydra notifies its clients through them')
    t.same(claimed[0]?.job.cause, { kind: 'credentials-changed', flow: 'recovery' })
    await queue.complete(claimed[0]!)
    clock.now += 1000
    const [consents] = await queue.claim(10, 30_000)
    t.same(consents?.job.target, { kind: 'hydra-consent-sessions', subject: identityId }, 'then the consents')

    const stranger = randomUUID()
    t.same(await logOutAfterCredentialsChange(deps, { identityId: stranger, flow: 'settings' }), { identityId: stranger, sids: [], steps: 1, queued: 1 },
      'the tokens issued under consents may outlive the index')
  })

  t.test(`${backend.name}: an identity without indexed sids: nothing to do`, async (t) => {
    const { deps, enqueueCalls, wakes } = setup()
    const identityId = randomUUID()
    t.same(await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings', method: 'totp' }), { identityId, sids: [], steps: 0, queued: 0 })
    t.equal(enqueueCalls.length, 0)
    t.equal(wakes(), 0)
  })

  t.test(`${backend.name}: a repeated call within the window queues nothing twice`, async (t) => {
    const { clock, index, queue, deps, wakes } = setup({ revokeConsents: true, dedupeSeconds: backend.redis === undefined ? CREDENTIALS_CHANGED_DEDUPE_SECONDS : 1 })
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings', method: 'password' })
    t.same(await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings', method: 'password' }), { identityId, sids: ['sid-1'], steps: 2, queued: 0 })
    t.equal(wakes(), 1)
    t.equal((await queue.counts()).waiting, 2)
    if (backend.redis === undefined) clock.now += CREDENTIALS_CHANGED_DEDUPE_SECONDS * 1000 + 1
    else await new Promise((resolve) => setTimeout(resolve, 1100))
    t.equal((await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings' })).queued, 2, 'a later change acts again')
  })

  t.test(`${backend.name}: a very large identity is still one enqueue, recorded in chunks, every sid marked`, async (t) => {
    const { index, queue, deps, enqueueCalls } = setup()
    const identityId = randomUUID()
    const sids = Array.from({ length: ENQUEUE_CHUNK * 2 + 5 }, () => randomUUID())
    for (const sid of sids) await index.add(sid, identityId)
    const result = await logOutAfterCredentialsChange(deps, { identityId, flow: 'settings', method: 'password' })
    t.equal(result.queued, sids.length)
    t.equal(enqueueCalls.length, 1)
    const outcomes = await Promise.all(sids.map(async (sid) => await echo(queue, sid)))
    t.same([...new Set(outcomes)], ['handled'])
  })

  t.test(`${backend.name}: a store failure throws and wakes nobody`, async (t) => {
    const { index, deps, wakes } = setup()
    const identityId = randomUUID()
    await index.add('sid-1', identityId)
    const failing: CredentialsChangedDeps = { ...deps, queue: { enqueue: async () => { throw new Error('store down') } } }
    await t.rejects(logOutAfterCredentialsChange(failing, { identityId, flow: 'settings' }), /store down/)
    t.equal(wakes(), 0)
  })
}
