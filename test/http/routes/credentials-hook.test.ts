import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { HOOK_KEY, build, eventually, type BuildOptions, type Harness, type TestContext } from '../../helper.js'
import { spawnRedis, startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

const ADMIN_KEY = 'admin-key-fedcba9876543210'
const CLIENTS = ['app-a', 'app-b']

interface CredentialsHarness extends Harness {
  /** `POST /hooks/credentials-changed` as Kratos' web hook sends it. */
  changed: (body: unknown, key?: string | null) => Promise<LightMyRequestResponse>
  /** Indexes `count` logins (sids) of one identity that holds `count + 1` Kratos sessions. */
  loginMany: (count: number) => Promise<{ identityId: string, sids: string[] }>
  /** Status of every back-channel logout Hydra delivered to the relay. */
  deliveries: number[]
}

/**
 * The relay with Hydra acting as it does after `DELETE …/sessions/login?sid=`: one signed logout token
 * per client of the session, POSTed to the relay (its backchannel_logout_uri) before Hydra answers.
 */
async function buildCredentials (t: TestContext, options: BuildOptions = {}): Promise<CredentialsHarness> {
  const relay = await build(t, { redis, ...options, env: { ADMIN_API_KEYS: ADMIN_KEY, ...options.env } })
  const deliveries: number[] = []
  relay.hydra.onRevokeLoginSession = async (sid) => {
    for (const clientId of CLIENTS) deliveries.push((await relay.logout(await relay.hydra.logoutToken(sid, { clientId }))).statusCode)
  }
  return {
    ...relay,
    deliveries,
    changed: (body, key = HOOK_KEY) => relay.app.inject({
      method: 'POST',
      url: '/hooks/credentials-changed',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
      payload: JSON.stringify(body)
    }),
    async loginMany (count) {
      const identityId = randomUUID()
      const sids: string[] = []
      // One more Kratos session than sids: the one the user changes their password in.
      relay.kratos.addSessions(identityId, count + 1)
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

function revokedSids (relay: Harness): string[] {
  return relay.hydra.callsOf('revokeOAuth2LoginSessions').map((call) => call.query.get('sid') ?? '').filter((sid) => sid !== '')
}

async function queueIsEmpty (relay: Harness): Promise<boolean> {
  const metrics = (await relay.app.inject('/metrics')).body
  return /logout_relay_queue_depth\{state="waiting"\} 0/.test(metrics) && /logout_relay_queue_depth\{state="active"\} 0/.test(metrics)
}

const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 200)) }

t.test('a password change ends every Hydra login session by sid; the echoed back-channel logouts end no Kratos session', async (t) => {
  const relay = await buildCredentials(t)
  const { identityId, sids } = await relay.loginMany(3)
  const other = await relay.loginMany(1)

  const response = await relay.changed({ identity_id: identityId.toUpperCase(), flow: 'settings', method: 'password' })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')

  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', sids.length)
  t.same(revokedSids(relay).sort(), [...sids].sort(), 'one DELETE …/sessions/login?sid= per sid')
  for (const call of relay.hydra.callsOf('revokeOAuth2LoginSessions')) t.equal(call.query.get('subject'), null, 'by sid, never by subject')
  t.ok(await eventually(() => relay.deliveries.length === sids.length * CLIENTS.length))
  t.same(relay.deliveries, Array(sids.length * CLIENTS.length).fill(200), 'every client\'s token answered 200')
  t.ok(await eventually(() => queueIsEmpty(relay)))
  await settle()
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 0, 'no Kratos revocation at all')
  t.equal(relay.kratos.activeSessions(identityId), sids.length + 1, 'Kratos\' own revoke_active_sessions decides which Kratos sessions end')
  t.equal(relay.hydra.callsOf('revokeOAuth2ConsentSessions').length, 0, 'consents only when configured')

  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_credentials_changed_total\{flow="settings",outcome="queued"\} 1/)
  t.match(metrics, new RegExp(`logout_relay_logout_tokens_total\\{outcome="already_handled",reason=""\\} ${sids.length * CLIENTS.length}`))
  t.notMatch(metrics, /logout_relay_logout_tokens_total\{outcome="queued"/)
  t.match(metrics, new RegExp(`logout_relay_revocations_total\\{outcome="succeeded",kind="hydra-login-session",status="[0-9]*"\\} ${sids.length}`))
  t.match(relay.logs.join('\n'), /"outcome":"credentials_changed_queued".*"flow":"settings","credentialMethod":"password","sids":3,"queued":3/)
  t.match(relay.logs.join('\n'), /"outcome":"already_handled"/)

  // No regression: a sid the relay did not revoke logs out as ever.
  t.equal((await relay.logout(await relay.hydra.logoutToken(other.sids[0] ?? ''))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [other.identityId])
})

t.test('tokens arriving after Hydra answered, or resent, are handled too; a replayed jti is still refused', async (t) => {
  const relay = await buildCredentials(t)
  relay.hydra.onRevokeLoginSession = undefined
  const { identityId, sids } = await relay.loginMany(1)
  const sid = sids[0] ?? ''
  t.equal((await relay.changed({ identity_id: identityId, flow: 'recovery', method: 'code' })).statusCode, 204)
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 1)
  t.ok(await eventually(() => queueIsEmpty(relay)), 'the Hydra job is done')
  const token = await relay.hydra.logoutToken(sid, { clientId: 'app-a' })
  t.equal((await relay.logout(token)).statusCode, 200)
  const replay = await relay.logout(token)
  t.equal(replay.statusCode, 400, 'replay protection stays')
  t.match(replay.json(), { error: 'invalid_request' })
  await settle()
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 0)
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="recovery",outcome="queued"\} 1/)
})

t.test('a login after the change is a new sid: its logout revokes Kratos as ever', async (t) => {
  const relay = await buildCredentials(t)
  const { identityId, sids } = await relay.loginMany(2)
  t.equal((await relay.changed({ identity_id: identityId, flow: 'settings', method: 'password' })).statusCode, 204)
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', sids.length)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  const fresh = randomUUID()
  t.equal((await relay.hook({ identity_id: identityId, sid: fresh })).statusCode, 204)
  t.equal((await relay.logout(await relay.hydra.logoutToken(fresh))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_logout_tokens_total\{outcome="queued",reason=""\} 1/)
})

t.test('CREDENTIAL_CHANGE_REVOKE_CONSENTS=true also revokes the subject\'s consents and their tokens', async (t) => {
  const relay = await buildCredentials(t, { env: { CREDENTIAL_CHANGE_REVOKE_CONSENTS: 'true' } })
  const { identityId, sids } = await relay.loginMany(2)
  t.equal((await relay.changed({ identity_id: identityId, flow: 'settings', method: 'totp' })).statusCode, 204)
  const [consent] = await relay.hydra.waitForCalls('revokeOAuth2ConsentSessions', 1)
  t.equal(consent?.query.get('subject'), identityId)
  t.equal(consent?.query.get('all'), 'true')
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', sids.length)
  t.same(revokedSids(relay).sort(), [...sids].sort())
  t.ok(await eventually(() => queueIsEmpty(relay)))
  await settle()
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 0)
})

t.test('Hydra failing for a while: each sid is retried until Hydra revokes it; its echoes are still handled', async (t) => {
  const relay = await buildCredentials(t)
  const { identityId, sids } = await relay.loginMany(2)
  relay.hydra.fail('revokeOAuth2LoginSessions', { status: 503, times: 3 })
  t.equal((await relay.changed({ identity_id: identityId, flow: 'settings', method: 'password' })).statusCode, 204, 'recorded while Hydra fails')
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', sids.length + 3)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  t.same([...new Set(revokedSids(relay))].sort(), [...sids].sort())
  t.ok(await eventually(() => relay.deliveries.length === sids.length * CLIENTS.length))
  t.same(relay.deliveries, Array(sids.length * CLIENTS.length).fill(200))
  await settle()
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 0)
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_revocations_total\{outcome="retried",kind="hydra-login-session",status="[0-9]*"\} 3/)
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="hydra-login-session",status="[0-9]*"\} 2/)
})

t.test('an identity the relay knows no sid of: 204, nothing to do', async (t) => {
  const relay = await buildCredentials(t)
  const response = await relay.changed({ identity_id: randomUUID(), flow: 'settings', method: 'password' })
  t.equal(response.statusCode, 204)
  await settle()
  t.equal(relay.hydra.actions.length, 0)
  t.equal(relay.kratos.actions.length, 0)
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="settings",outcome="nothing_to_do"\} 1/)
})

t.test('a repeated call is harmless: each sid is revoked once', async (t) => {
  const relay = await buildCredentials(t)
  const { identityId, sids } = await relay.loginMany(2)
  relay.hydra.fail('revokeOAuth2LoginSessions', { kind: 'delay', ms: 300, times: 2 })
  for (let i = 0; i < 3; i++) t.equal((await relay.changed({ identity_id: identityId, flow: 'settings', method: 'password' })).statusCode, 204)
  await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', sids.length)
  t.ok(await eventually(() => queueIsEmpty(relay)))
  await settle()
  t.equal(relay.hydra.callsOf('revokeOAuth2LoginSessions').length, sids.length)
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_credentials_changed_total\{flow="settings",outcome="queued"\} 1/)
  t.match(metrics, /logout_relay_credentials_changed_total\{flow="settings",outcome="already_queued"\} 2/)
})

t.test('a bad body is a 400 that names the field, and queues nothing', async (t) => {
  const relay = await buildCredentials(t)
  const { identityId } = await relay.loginMany(1)
  const cases: Array<[unknown, string]> = [
    [{ flow: 'settings' }, 'identity_id'],
    [{ identity_id: 'alice', flow: 'settings' }, 'identity_id'],
    [{ identity_id: identityId }, 'flow'],
    [{ identity_id: identityId, flow: 'login' }, 'flow'],
    [{ identity_id: identityId, flow: 'settings', method: '' }, 'method'],
    [{ identity_id: identityId, flow: 'settings', method: 'm'.repeat(65) }, 'method'],
    [{ identity_id: identityId, flow: 'settings', method: ['password'] }, 'method'],
    [[identityId], 'body'],
    ['settings', 'body']
  ]
  for (const [body, field] of cases) {
    const response = await relay.changed(body)
    t.equal(response.statusCode, 400, JSON.stringify(body).slice(0, 60))
    t.equal(response.json().error, 'invalid_request')
    t.equal(response.json().field, field)
  }
  const post = (payload: string, contentType: string) => relay.app.inject({
    method: 'POST', url: '/hooks/credentials-changed', headers: { authorization: `Bearer ${HOOK_KEY}`, 'content-type': contentType }, payload
  })
  t.equal((await post('{"identity_id":', 'application/json')).statusCode, 400)
  t.equal((await post('hello', 'text/plain')).statusCode, 415)
  t.equal((await post(JSON.stringify({ identity_id: identityId, flow: 'settings', pad: 'x'.repeat(20_000) }), 'application/json')).statusCode, 413)
  t.equal((await relay.app.inject({ method: 'GET', url: '/hooks/credentials-changed' })).statusCode, 405)
  await settle()
  t.equal(relay.hydra.actions.length, 0, 'nothing reached Hydra')
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="",outcome="invalid"\} 9\n/, 'each refused body is counted, under no flow')
})

t.test('the login hook\'s keys only: a missing or wrong key, or the admin key, is a 401; failures are counted apart', async (t) => {
  const relay = await buildCredentials(t, { env: { AUTH_FAILURE_LIMIT: '3' } })
  const { identityId } = await relay.loginMany(1)
  const body = { identity_id: identityId, flow: 'settings', method: 'password' }
  for (const [name, key] of [['no key', null], ['wrong key', 'wrong-key-0123456789abcdef'], ['the admin key', ADMIN_KEY]] as const) {
    const response = await relay.changed(body, key)
    t.equal(response.statusCode, 401, name)
    t.equal(response.headers['www-authenticate'], 'Bearer realm="logout-relay"', name)
    t.same(response.json(), { error: 'unauthorized', error_description: 'missing or wrong API key' }, name)
  }
  t.equal((await relay.changed(body, 'guess-0123456789abcdef')).statusCode, 429, 'past the limit, this route\'s failures are slowed')
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, 'guess-hook-0123456789abcdef')).statusCode, 401,
    'the login hook counts its own failures')
  await settle()
  t.equal(relay.hydra.actions.length, 0)
  t.equal((await relay.changed(body)).statusCode, 204, 'the right key always passes')
  t.notMatch(relay.logs.join('\n'), HOOK_KEY, 'the key is never logged')
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="",outcome="unauthorized"\} 3/)
})

t.test('without LOGIN_HOOK_API_KEYS the hook refuses every call with 503', async (t) => {
  const relay = await buildCredentials(t, { env: { LOGIN_HOOK_API_KEYS: undefined } })
  const response = await relay.changed({ identity_id: randomUUID(), flow: 'settings' })
  t.equal(response.statusCode, 503)
  t.same(response.json(), { error: 'not_configured', error_description: 'credentials hook is not configured' })
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="",outcome="not_configured"\} 1/)
})

t.test('each key is rate limited: 429 with Retry-After', async (t) => {
  const relay = await buildCredentials(t, { env: { HOOK_RATE_LIMIT: '2', HOOK_RATE_WINDOW: '60' } })
  for (let i = 0; i < 2; i++) t.equal((await relay.changed({ identity_id: randomUUID(), flow: 'settings' })).statusCode, 204)
  const limited = await relay.changed({ identity_id: randomUUID(), flow: 'settings' })
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })).statusCode, 204, 'the login hook has a budget of its own')
})

t.test('Redis down: 503 with Retry-After, so that Kratos retries; nothing reaches Hydra', async (t) => {
  const own = await spawnRedis()
  t.teardown(() => own.close())
  const relay = await buildCredentials(t, { redis: own, env: { REDIS_COMMAND_TIMEOUT: '300' } })
  const { identityId } = await relay.loginMany(1)
  await own.stop()
  const response = await relay.changed({ identity_id: identityId, flow: 'settings', method: 'password' })
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '5')
  t.equal(response.json().error, 'temporarily_unavailable')
  t.equal(relay.hydra.actions.length, 0)
  t.match((await relay.app.inject('/metrics')).body, /logout_relay_credentials_changed_total\{flow="settings",outcome="unavailable"\} 1/)
})
