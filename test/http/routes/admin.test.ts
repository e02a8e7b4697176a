import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { HOOK_KEY, build, eventually, type BuildOptions, type Harness, type TestContext } from '../../helper.js'
import { spawnRedis, startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

const ADMIN_KEY = 'admin-key-fedcba9876543210'

interface StepBody { kind: string, sid?: string, identity_id?: string, subject?: string, status: string }
interface LogoutBody { identity_id: string, sids: string[], steps: StepBody[] }

interface AdminHarness extends Harness {
  /** `POST /admin/identities/{id}/logout` with the admin key; `body` undefined sends none. */
  logOutEverywhere: (id: string, body?: unknown, key?: string | null) => Promise<LightMyRequestResponse>
  /** `GET /admin/identities/{id}/sessions` with the admin key. */
  sessions: (id: string, key?: string | null) => Promise<LightMyRequestResponse>
  /** Indexes `count` logins (sids) of one identity that holds `count` Kratos sessions. */
  loginMany: (count: number) => Promise<{ identityId: string, sids: string[] }>
}

async function buildAdmin (t: TestContext, options: BuildOptions = {}): Promise<AdminHarness> {
  const relay = await build(t, { redis, ...options, env: { ADMIN_API_KEYS: ADMIN_KEY, ...options.env } })
  const authorization = (key: string | null): Record<string, string> => key === null ? {} : { authorization: `Bearer ${key}` }
  return {
    ...relay,
    logOutEverywhere: (id, body, key = ADMIN_KEY) => relay.app.inject({
      method: 'POST',
      url: `/admin/identities/${id}/logout`,
      headers: { ...authorization(key), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {})
    }),
    sessions: (id, key = ADMIN_KEY) => relay.app.inject({ method: 'GET', url: `/admin/identities/${id}/sessions`, headers: authorization(key) }),
    async loginMany (count) {
      const identityId = randomUUID()
      const sids: string[] = []
      relay.kratos.addSessions(identityId, count)
      for (let i = 0; i < count; i++) {
        const sid = randomUUID()
        const response = await relay.hook({ identity_id: identityId, sid })
        if (response.statusCode !== 204) throw new Error(`login hook answered ${response.statusCode}`)
        sids.push(sid)
      }
      return { identityId, sids }
    }
  }
}

/** The sid query parameter of every revokeOAuth2LoginSessions call Hydra answered with 204. */
function revokedSids (relay: Harness): string[] {
  return relay.hydra.callsOf('revokeOAuth2LoginSessions').map((call) => call.query.get('sid') ?? '').filter((sid) => sid !== '')
}

async function queueIsEmpty (relay: Harness): Promise<boolean> {
  const counts = await relay.app.inject('/metrics').then((response) => response.body)
  return /logout_relay_queue_depth\{state="waiting"\} 0/.test(counts) && /logout_relay_queue_depth\{state="active"\} 0/.test(counts)
}

t.test('revokes every sid of the identity at Hydra and every Kratos session; 202 lists what was queued', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(3)
  const other = await relay.loginMany(1)

  const response = await relay.logOutEverywhere(identityId.toUpperCase())
  t.equal(response.statusCode, 202)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json<LogoutBody>()
  t.equal(body.identity_id, identityId, 'the id in Kratos\' lower case')
  t.same(body.sids, [...sids].sort())
  t.same(body.steps, [
    ...[...sids].sort().map((sid) => ({ kind: 'hydra-login-session', sid, status: 'queued' })),
    { kind: 'kratos-sessions', identity_id: identityId, status: 'queued' }
  ])

  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 3)
  t.same(revokedSids(relay).sort(), [...sids].sort(), 'one DELETE …/sessions/login?sid= per sid')
  for (const call of relay.hydra.callsOf('revokeOAuth2LoginSessions')) t.equal(call.query.get('subject'), null, 'by sid, never by subject')
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])
  t.equal(relay.kratos.activeSessions(identityId), 0)
  t.equal(relay.kratos.activeSessions(other.identityId), 1, 'another identity keeps its sessions')
  t.ok(await eventually(() => queueIsEmpty(relay)), 'every step done')
  t.equal(relay.hydra.callsOf('revokeOAuth2ConsentSessions').length, 0, 'consents only when asked')

  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_admin_calls_total\{action="logout",outcome="queued"\} 1/)
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="hydra-login-session",status="[0-9]*"\} 3/)
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="kratos-sessions",status="[0-9]*"\} 1/)
})

t.test('revoke_consents also revokes the subject\'s consent sessions and their tokens', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(1)
  const response = await relay.logOutEverywhere(identityId, { revoke_consents: true })
  t.equal(response.statusCode, 202)
  t.same(response.json<LogoutBody>().steps.map((step) => step.kind), ['hydra-login-session', 'kratos-sessions', 'hydra-consent-sessions'])
  t.same(response.json<LogoutBody>().steps[2], { kind: 'hydra-consent-sessions', subject: identityId, status: 'queued' })
  const [consent] = await relay.hydra.waitForCalls('revokeOAuth2ConsentSessions', 1)
  t.equal(consent?.query.get('subject'), identityId)
  t.equal(consent?.query.get('all'), 'true')
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 1)
  t.same(revokedSids(relay), sids)

  const without = await relay.logOutEverywhere((await relay.loginMany(1)).identityId, { revoke_consents: false })
  t.same(without.json<LogoutBody>().steps.map((step) => step.kind), ['hydra-login-session', 'kratos-sessions'])
})

t.test('the consents are revoked only once Hydra answered each login session\'s revocation', async (t) => {
  // Hydra finds the clients to notify of a login session's end through its consents: consents revoked
  // first would leave every client of the session unnotified.
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(3)
  relay.hydra.fail('revokeOAuth2LoginSessions', { kind: 'delay', ms: 300, times: 3 })
  t.equal((await relay.logOutEverywhere(identityId, { revoke_consents: true })).statusCode, 202)
  await relay.hydra.waitForCalls('revokeOAuth2ConsentSessions', 1)
  const answered = relay.hydra.actions.map((call) => call.operationId === 'revokeOAuth2LoginSessions' ? call.query.get('sid') : call.operationId)
  const consentAt = answered.indexOf('revokeOAuth2ConsentSessions')
  for (const sid of sids) {
    const revokedAt = answered.indexOf(sid)
    t.ok(revokedAt !== -1 && revokedAt < consentAt, `${sid.slice(0, 8)}… was revoked before the consents`)
  }
})

t.test('Hydra failing for a while: each sid is retried until Hydra revokes it', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(2)
  relay.hydra.fail('revokeOAuth2LoginSessions', { status: 503, times: 2 })
  t.equal((await relay.logOutEverywhere(identityId)).statusCode, 202, 'accepted while Hydra fails')
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 4)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  const calls = relay.hydra.callsOf('revokeOAuth2LoginSessions')
  t.equal(calls.length, 4, 'two failures, then one success per sid')
  t.same([...new Set(revokedSids(relay))].sort(), [...sids].sort())
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_revocations_total\{outcome="retried",kind="hydra-login-session",status="[0-9]*"\} 2/)
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="hydra-login-session",status="[0-9]*"\} 2/)
  t.ok(relay.logs.some((line) => line.includes('will retry')), 'each failure is logged')
})

t.test('an identity the relay knows no sid of: 202, no Hydra call; Kratos is still asked', async (t) => {
  const relay = await buildAdmin(t)
  const identityId = randomUUID()
  const response = await relay.logOutEverywhere(identityId)
  t.equal(response.statusCode, 202)
  t.same(response.json(), {
    identity_id: identityId,
    sids: [],
    steps: [{ kind: 'kratos-sessions', identity_id: identityId, status: 'queued' }]
  })
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  t.equal(relay.hydra.callsOf('revokeOAuth2LoginSessions').length, 0)
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="kratos-sessions",status="[0-9]*"\} 1/, 'Kratos\' 404 (nothing to revoke) is success')
  t.notMatch(metrics, /outcome="retried"/)

  const sessions = await relay.sessions(identityId)
  t.equal(sessions.statusCode, 200)
  t.same(sessions.json(), { identity_id: identityId, sessions: [] })
})

t.test('GET sessions lists the sids the index knows, with their expiry', async (t) => {
  const relay = await buildAdmin(t, { env: { SID_TTL: '3600' } })
  const before = Date.now()
  const { identityId, sids } = await relay.loginMany(2)
  const response = await relay.sessions(identityId.toUpperCase())
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json<{ identity_id: string, sessions: Array<{ sid: string, expires_at: string }> }>()
  t.equal(body.identity_id, identityId)
  t.same(body.sessions.map((session) => session.sid).sort(), [...sids].sort())
  for (const session of body.sessions) {
    t.match(session.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601, UTC')
    const expiresAt = Date.parse(session.expires_at)
    t.ok(expiresAt >= Math.floor(before / 1000) * 1000 + 3600_000 && expiresAt <= Date.now() + 3600_000, 'SID_TTL after the login (to the second)')
  }
  t.equal((await relay.app.inject({ method: 'POST', url: `/admin/identities/${identityId}/sessions`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })).headers['allow'], 'GET, HEAD')
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_admin_calls_total\{action="sessions",outcome="listed"\} 1/)
})

t.test('a bad id or body is a 400 that names the field, and queues nothing', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId } = await relay.loginMany(1)
  const ids: Array<[string, string]> = [['alice', 'id'], ['1234', 'id'], [`${identityId}x`, 'id'], [encodeURIComponent('../x'), 'id']]
  for (const [id, field] of ids) {
    for (const response of [await relay.logOutEverywhere(id), await relay.sessions(id)]) {
      t.equal(response.statusCode, 400, id)
      t.same(response.json(), { error: 'invalid_request', error_description: 'id must be a Kratos identity id (a UUID)', field })
    }
  }
  const bodies: Array<[unknown, string]> = [
    [{ revoke_consents: 'yes' }, 'revoke_consents'],
    [{ revoke_consents: 1 }, 'revoke_consents'],
    [{ revoke_consent: true }, 'revoke_consent'],
    [[true], 'body'],
    ['revoke', 'body'],
    [null, 'body']
  ]
  for (const [body, field] of bodies) {
    const response = await relay.logOutEverywhere(identityId, body)
    t.equal(response.statusCode, 400, JSON.stringify(body))
    t.equal(response.json().field, field, JSON.stringify(body))
    t.equal(response.json().error, 'invalid_request')
  }
  const post = (payload: string, contentType: string) => relay.app.inject({
    method: 'POST', url: `/admin/identities/${identityId}/logout`, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType }, payload
  })
  const broken = await post('{"revoke_consents":', 'application/json')
  t.equal(broken.statusCode, 400)
  t.same(broken.json(), { error: 'invalid_request', error_description: 'the body is not valid JSON', field: 'body' })
  t.equal((await post('{"__proto__":{"x":1}}', 'application/json')).statusCode, 400, 'prototype poisoning is refused')
  t.equal((await post('revoke_consents=true', 'application/x-www-form-urlencoded')).statusCode, 415)
  t.equal((await post('x'.repeat(5000), 'application/json')).statusCode, 413)
  t.equal((await relay.app.inject({ method: 'GET', url: `/admin/identities/${identityId}/logout` })).statusCode, 405)

  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.hydra.actions.length, 0, 'nothing reached Hydra')
  t.same(relay.kratos.revokedIdentities(), [], 'nor Kratos')
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_admin_calls_total\{action="logout",outcome="invalid"\} 12\n/, 'each refused body and id is counted')

  const empty = await post('', 'application/json')
  t.equal(empty.statusCode, 202, 'an empty JSON body is no body')
  const none = await relay.app.inject({ method: 'POST', url: `/admin/identities/${identityId}/logout`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(none.statusCode, 202, 'no body at all')
})

t.test('a missing or wrong key, or the login hook\'s key, is a 401 with WWW-Authenticate; nothing queued', async (t) => {
  const relay = await buildAdmin(t, { env: { LOG_LEVEL: 'trace' } })
  const { identityId } = await relay.loginMany(2)
  const refusals: Array<[string, LightMyRequestResponse]> = [
    ['no key', await relay.logOutEverywhere(identityId, undefined, null)],
    ['wrong key', await relay.logOutEverywhere(identityId, undefined, 'wrong-key-0123456789abcdef')],
    ['the hook key', await relay.logOutEverywhere(identityId, undefined, HOOK_KEY)],
    ['a longer key', await relay.logOutEverywhere(identityId, undefined, `${ADMIN_KEY}0`)],
    ['sessions, no key', await relay.sessions(identityId, null)],
    ['sessions, the hook key', await relay.sessions(identityId, HOOK_KEY)],
    ['Basic scheme', await relay.app.inject({ method: 'POST', url: `/admin/identities/${identityId}/logout`, headers: { authorization: `Basic ${ADMIN_KEY}` } })]
  ]
  for (const [name, response] of refusals) {
    t.equal(response.statusCode, 401, name)
    t.equal(response.headers['www-authenticate'], 'Bearer realm="logout-relay"', name)
    t.same(response.json(), { error: 'unauthorized', error_description: 'missing or wrong API key' }, name)
  }
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, ADMIN_KEY)).statusCode, 401, 'nor does the admin key open the login hook')
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.hydra.actions.length, 0)
  t.same(relay.kratos.revokedIdentities(), [])

  t.equal((await relay.logOutEverywhere(identityId)).statusCode, 202, 'the admin key works')
  const logs = relay.logs.join('\n')
  t.notMatch(logs, ADMIN_KEY, 'the admin key is never logged')
  t.notMatch(logs, 'wrong-key-0123456789abcdef')
  t.match(logs, /"outcome":"global_logout_queued"/, 'the call is logged')
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_admin_calls_total\{action="logout",outcome="unauthorized"\} 5/)
  t.match(metrics, /logout_relay_admin_calls_total\{action="sessions",outcome="unauthorized"\} 2/)
})

t.test('wrong admin keys from one address never lock out the right key, nor touch the login hook\'s counter', async (t) => {
  const relay = await buildAdmin(t, { env: { AUTH_FAILURE_LIMIT: '3' } })
  const { identityId } = await relay.loginMany(1)
  const refused: number[] = []
  for (let i = 0; i < 20; i++) refused.push((await relay.sessions(identityId, `guess-${i}-0123456789abcdef`)).statusCode)
  t.same(refused, [...Array(3).fill(401), ...Array(17).fill(429)], 'failures are counted, then slowed')
  t.equal((await relay.logOutEverywhere(identityId)).statusCode, 202, 'the right admin key, same address, passes')
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, 'guess-hook-0123456789abcdef')).statusCode, 401,
    'the login hook counts its own failures: a wrong hook key is a 401, not a 429')
})

t.test('several admin keys, for rotation: each one works', async (t) => {
  const keys = ['old-admin-key-0123456789', 'new-admin-key-0123456789']
  const relay = await buildAdmin(t, { env: { ADMIN_API_KEYS: keys.join(',') } })
  for (const key of keys) t.equal((await relay.sessions(randomUUID(), key)).statusCode, 200, key)
})

t.test('without ADMIN_API_KEYS the admin API refuses every call with 503', async (t) => {
  const relay = await buildAdmin(t, { env: { ADMIN_API_KEYS: undefined } })
  const { identityId } = await relay.loginMany(1)
  for (const response of [
    await relay.logOutEverywhere(identityId),
    await relay.logOutEverywhere(identityId, undefined, HOOK_KEY),
    await relay.sessions(identityId, null)
  ]) {
    t.equal(response.statusCode, 503)
    t.same(response.json(), { error: 'not_configured', error_description: 'admin API is not configured' })
  }
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.hydra.actions.length, 0)
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_admin_calls_total\{action="logout",outcome="not_configured"\} 2/)
})

t.test('a repeated call is harmless: a double click queues nothing twice, a new login makes the next call act', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(2)
  const first = await relay.logOutEverywhere(identityId)
  const second = await relay.logOutEverywhere(identityId)
  t.equal(second.statusCode, 202)
  t.same(second.json<LogoutBody>().steps.map((step) => step.status), ['already_queued', 'already_queued', 'already_queued'])
  t.same(second.json<LogoutBody>().sids, first.json<LogoutBody>().sids)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.hydra.callsOf('revokeOAuth2LoginSessions').length, 2, 'each sid revoked once')
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 1, 'Kratos asked once')

  // The user logs in again on another device: the next call acts on what is new.
  const sid = randomUUID()
  relay.kratos.addSessions(identityId, 1)
  t.equal((await relay.hook({ identity_id: identityId, sid })).statusCode, 204)
  const third = await relay.logOutEverywhere(identityId)
  const statuses = Object.fromEntries(third.json<LogoutBody>().steps.map((step) => [step.sid ?? step.kind, step.status]))
  t.same(statuses, { [sids[0] as string]: 'already_queued', [sids[1] as string]: 'already_queued', [sid]: 'queued', 'kratos-sessions': 'queued' })
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 3)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 2)
  t.equal(relay.kratos.activeSessions(identityId), 0, 'the new device is logged out too')
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_admin_calls_total\{action="logout",outcome="already_queued"\} 1/)
})

t.test('Redis down: 503 with Retry-After, nothing queued', async (t) => {
  const own = await spawnRedis()
  t.teardown(() => own.close())
  const relay = await buildAdmin(t, { redis: own, env: { REDIS_COMMAND_TIMEOUT: '300' } })
  const { identityId } = await relay.loginMany(1)
  await own.stop()
  for (const response of [await relay.logOutEverywhere(identityId), await relay.sessions(identityId)]) {
    t.equal(response.statusCode, 503)
    t.equal(response.headers['retry-after'], '5')
    t.equal(response.json().error, 'temporarily_unavailable')
  }
  t.equal(relay.hydra.actions.length, 0)
  t.notMatch(relay.logs.join('\n'), ADMIN_KEY)
})

t.test('end to end: Hydra sends back-channel logout for each revoked sid; the relay dedupes its clients\' tokens', async (t) => {
  const relay = await buildAdmin(t)
  const { identityId, sids } = await relay.loginMany(2)
  const clients = ['app-a', 'app-b', 'app-c']
  const deliveries: number[] = []
  // What Hydra does after DELETE …/sessions/login?sid=: one signed logout token per client of the session.
  relay.hydra.onRevokeLoginSession = async (sid) => {
    for (const clientId of clients) deliveries.push((await relay.logout(await relay.hydra.logoutToken(sid, { clientId }))).statusCode)
  }
  t.equal((await relay.logOutEverywhere(identityId)).statusCode, 202)
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 2)
  t.ok(await eventually(() => deliveries.length === sids.length * clients.length))
  t.same(deliveries, Array(sids.length * clients.length).fill(200), 'Hydra\'s every delivery answered 200')
  t.ok(await eventually(() => queueIsEmpty(relay)))

  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_logout_tokens_total\{outcome="queued",reason=""\} 2/, 'one revocation per sid')
  t.match(metrics, /logout_relay_logout_tokens_total\{outcome="duplicate",reason=""\} 4/, 'the other clients\' tokens deduped')
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 1 + sids.length, 'the global step plus one per sid (404: nothing left)')
  t.same([...new Set(relay.kratos.revokedIdentities())], [identityId])
  t.equal(relay.kratos.activeSessions(identityId), 0)
})
