import { randomUUID } from 'node:crypto'
import t from 'tap'
import { HOOK_KEY, build, eventually } from '../../helper.js'
import { startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

t.test('without configured keys the hook refuses every call', async (t) => {
  const relay = await build(t, { redis, env: { LOGIN_HOOK_API_KEYS: undefined } })
  const response = await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })
  t.equal(response.statusCode, 503)
  t.same(response.json(), { error: 'not_configured', error_description: 'login hook is not configured' })
  const anonymous = await relay.app.inject({ method: 'POST', url: '/hooks/login', headers: { 'content-type': 'application/json' }, payload: '{}' })
  t.equal(anonymous.statusCode, 503)
})

t.test('a missing or wrong key is a 401 and stores nothing', async (t) => {
  const relay = await build(t, { redis })
  const sid = randomUUID()
  const identityId = randomUUID()
  const wrong = await relay.hook({ identity_id: identityId, sid }, 'not-the-key-0123456789')
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="logout-relay"')
  t.equal(wrong.json().error, 'unauthorized')
  const missing = await relay.app.inject({
    method: 'POST', url: '/hooks/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ identity_id: identityId, sid })
  })
  t.equal(missing.statusCode, 401)
  const basic = await relay.app.inject({
    method: 'POST', url: '/hooks/login', headers: { 'content-type': 'application/json', authorization: `Basic ${HOOK_KEY}` }, payload: JSON.stringify({ identity_id: identityId, sid })
  })
  t.equal(basic.statusCode, 401, 'only the Bearer scheme')

  relay.kratos.addSessions(identityId)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(relay.kratos.revokedIdentities(), [], 'the rejected calls indexed nothing')
})

t.test('a live sid is never remapped: 409, the first identity keeps it, and its logout still revokes it', async (t) => {
  const relay = await build(t, { redis })
  const { identityId: victim, sid } = await relay.login()
  const attacker = randomUUID()
  relay.kratos.addSessions(attacker)
  const remap = await relay.hook({ identity_id: attacker, sid })
  t.equal(remap.statusCode, 409)
  t.same(remap.json(), { error: 'conflict', error_description: 'this login session is indexed for another identity; a sid is never remapped', field: 'sid' })
  t.equal((await relay.hook({ identity_id: victim.toUpperCase(), sid })).statusCode, 204, 'the same identity again is idempotent')
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: 'x'.repeat(256) })).statusCode, 204, 'a sid of 256 characters is accepted')

  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  t.ok(await eventually(() => relay.kratos.revokedIdentities().length === 1))
  t.same(relay.kratos.revokedIdentities(), [victim], "the victim's sessions end, the other identity's survive")
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="conflict"\} 1/)
})

t.test('a late hook cannot point a logged-out sid at another identity either', async (t) => {
  const relay = await build(t, { redis })
  const sid = randomUUID()
  const [first, second] = [randomUUID(), randomUUID()]
  relay.kratos.addSessions(first)
  relay.kratos.addSessions(second)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200, 'a logout for a sid not indexed yet')
  t.equal((await relay.hook({ identity_id: first, sid })).statusCode, 204, 'the late hook revokes at once')
  t.equal((await relay.hook({ identity_id: second, sid })).statusCode, 409, 'a second late hook for another identity is refused')
  t.ok(await eventually(() => relay.kratos.revokedIdentities().length >= 1))
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(relay.kratos.revokedIdentities(), [first])
})

t.test('several keys, for rotation: each one works', async (t) => {
  const keys = ['old-key-0123456789abcdef', 'new-key-0123456789abcdef']
  const relay = await build(t, { redis, env: { LOGIN_HOOK_API_KEYS: keys.join(', ') } })
  for (const key of keys) {
    t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, key)).statusCode, 204, key)
  }
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, `${keys[0]}x`)).statusCode, 401)
})

t.test('a bad body is a 400 that names the field', async (t) => {
  const relay = await build(t, { redis })
  const identityId = randomUUID()
  const cases: Array<[unknown, string]> = [
    [{ sid: 's' }, 'identity_id'],
    [{ identity_id: 'alice', sid: 's' }, 'identity_id'],
    [{ identity_id: 42, sid: 's' }, 'identity_id'],
    [{ identity_id: identityId }, 'login_challenge'],
    [{ identity_id: identityId, sid: '' }, 'sid'],
    [{ identity_id: identityId, sid: 7 }, 'sid'],
    [{ identity_id: identityId, sid: 'x'.repeat(2000) }, 'sid'],
    [{ identity_id: identityId, sid: 'x'.repeat(257) }, 'sid'],
    [{ identity_id: identityId, login_challenge: ['a'] }, 'login_challenge'],
    [{ identity_id: identityId, sid: 's', login_challenge: 'c' }, 'sid'],
    [[identityId], 'body'],
    ['just a string', 'body']
  ]
  for (const [body, field] of cases) {
    const response = await relay.hook(body)
    t.equal(response.statusCode, 400, JSON.stringify(body).slice(0, 60))
    t.equal(response.json().field, field)
    t.match(response.json().error_description, field === 'body' ? /JSON object/ : new RegExp(field))
  }
  const broken = await relay.app.inject({
    method: 'POST', url: '/hooks/login', headers: { 'content-type': 'application/json', authorization: `Bearer ${HOOK_KEY}` }, payload: '{"identity_id":'
  })
  t.equal(broken.statusCode, 400)
  const text = await relay.app.inject({
    method: 'POST', url: '/hooks/login', headers: { 'content-type': 'text/plain', authorization: `Bearer ${HOOK_KEY}` }, payload: 'hello'
  })
  t.equal(text.statusCode, 415)
  t.equal((await relay.app.inject({ method: 'GET', url: '/hooks/login' })).statusCode, 405)
  t.equal(relay.hydra.actions.length, 0)
})

t.test('the sid form indexes the login; extra members are ignored', async (t) => {
  const relay = await build(t, { redis })
  const identityId = randomUUID()
  const sid = randomUUID()
  relay.kratos.addSessions(identityId, 2)
  const response = await relay.hook({ identity_id: identityId.toUpperCase(), sid, method: 'password', extra: { any: 1 } })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  t.equal((await relay.hook({ identity_id: identityId, sid })).statusCode, 204, 'idempotent')
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId], 'identity ids are kept in Kratos\' lower case')
})

t.test('the login_challenge form asks Hydra for the session id', async (t) => {
  const relay = await build(t, { redis })
  const identityId = randomUUID()
  const sid = randomUUID()
  relay.kratos.addSessions(identityId)
  const request = relay.hydra.addLoginRequest({ sessionId: sid })
  t.equal((await relay.hook({ identity_id: identityId, login_challenge: request.challenge })).statusCode, 204)
  const [lookup] = relay.hydra.callsOf('getOAuth2LoginRequest')
  t.equal(lookup?.query.get('login_challenge'), request.challenge)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])
})

t.test('a challenge Hydra does not know (404) or no longer has (410) is a 400', async (t) => {
  const relay = await build(t, { redis })
  const unknown = await relay.hook({ identity_id: randomUUID(), login_challenge: 'no-such-challenge' })
  t.equal(unknown.statusCode, 400)
  t.same(unknown.json(), { error: 'invalid_request', error_description: 'Hydra does not know this login_challenge', field: 'login_challenge' })
  const handled = relay.hydra.addLoginRequest({ sessionId: randomUUID(), handled: true })
  t.equal((await relay.hook({ identity_id: randomUUID(), login_challenge: handled.challenge })).statusCode, 400)
})

t.test('Hydra unreachable or failing is a 503, so that Kratos retries', async (t) => {
  const relay = await build(t, { redis, env: { UPSTREAM_TIMEOUT: '500' } })
  const request = relay.hydra.addLoginRequest({ sessionId: randomUUID() })
  for (const fault of [{ status: 500 }, { status: 429 }, { kind: 'reset' as const }, { kind: 'timeout' as const }, { status: 401 }]) {
    relay.hydra.fail('getOAuth2LoginRequest', { ...fault, times: 1 })
    const response = await relay.hook({ identity_id: randomUUID(), login_challenge: request.challenge })
    t.equal(response.statusCode, 503, JSON.stringify(fault))
    t.equal(response.json().error, 'temporarily_unavailable')
  }
  t.equal((await relay.hook({ identity_id: randomUUID(), login_challenge: request.challenge })).statusCode, 204, 'works once Hydra is back')
})

t.test('the admin token goes to Hydra as a Bearer token', async (t) => {
  const { HydraDouble } = await import('../../doubles/hydra.js')
  const hydra = await HydraDouble.start({ token: 'hydra-admin-secret' })
  t.teardown(() => hydra.close())
  const relay = await build(t, { redis, hydra, env: { HYDRA_ADMIN_TOKEN: 'hydra-admin-secret' } })
  const request = hydra.addLoginRequest({ sessionId: randomUUID() })
  t.equal((await relay.hook({ identity_id: randomUUID(), login_challenge: request.challenge })).statusCode, 204)
  t.equal(hydra.callsOf('getOAuth2LoginRequest')[0]?.authorization, 'Bearer hydra-admin-secret')
})

t.test('hook outcomes are counted', async (t) => {
  const relay = await build(t, { redis })
  await relay.login()
  await relay.hook({ identity_id: 'x', sid: 's' })
  await relay.hook({ identity_id: randomUUID(), sid: 's' }, 'wrong-key-0123456789abc')
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="indexed"\} 1/)
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="invalid"\} 1/)
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="unauthorized"\} 1/)
})

t.test('each key is rate limited', async (t) => {
  const relay = await build(t, { redis, env: { HOOK_RATE_LIMIT: '3', HOOK_RATE_WINDOW: '60' } })
  for (let i = 0; i < 3; i++) t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })).statusCode, 204)
  const limited = await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().error, 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0)
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="rate_limited"\} 1/)
})

t.test('wrong keys are limited per client address; the right key always passes', async (t) => {
  const relay = await build(t, { redis, env: { AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW: '60', TRUST_PROXY: '1' } })
  const call = (key: string, address: string) => relay.app.inject({
    method: 'POST',
    url: '/hooks/login',
    remoteAddress: '10.0.0.1',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-forwarded-for': address },
    payload: JSON.stringify({ identity_id: randomUUID(), sid: randomUUID() })
  })
  for (let i = 0; i < 3; i++) t.equal((await call(`guess-${i}-0123456789abcdef`, '203.0.113.7')).statusCode, 401)
  for (let i = 0; i < 20; i++) {
    const limited = await call(`guess-more-${i}-0123456789abcdef`, '203.0.113.7')
    t.equal(limited.statusCode, 429, 'past the limit, a wrong key from that address is refused')
    t.ok(Number(limited.headers['retry-after']) > 0)
  }
  t.equal((await call(HOOK_KEY, '203.0.113.7')).statusCode, 204, 'the right key from the same address is let through')
  t.equal((await call('guess-x-0123456789abcdef', '198.51.100.9')).statusCode, 401, 'another address is not affected')
})

t.test('a flood of wrong keys from the address Kratos shares does not stop logins', async (t) => {
  // Behind an ingress, a sidecar or NAT every caller has one address: the attacker's and Kratos'.
  const relay = await build(t, { redis, env: { AUTH_FAILURE_LIMIT: '10' } })
  for (let i = 0; i < 50; i++) await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, `wrong-${i}-0123456789abcdef`)
  const { identityId, sid } = { identityId: randomUUID(), sid: randomUUID() }
  t.equal((await relay.hook({ identity_id: identityId, sid })).statusCode, 204, "Kratos' key still indexes the login")
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="unauthorized"\} 10/)
  t.match(metrics, /logout_relay_login_hook_calls_total\{outcome="rate_limited"\} 40/)
})

t.test('rotating a forged X-Forwarded-For escapes nothing: failures are limited over all addresses too', async (t) => {
  const relay = await build(t, { redis, env: { AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_GLOBAL_LIMIT: '10', TRUST_PROXY: 'true' } })
  const statuses: number[] = []
  for (let i = 0; i < 30; i++) {
    const response = await relay.app.inject({
      method: 'POST',
      url: '/hooks/login',
      headers: { authorization: `Bearer guess-${i}-0123456789abcdef`, 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` },
      payload: JSON.stringify({ identity_id: randomUUID(), sid: randomUUID() })
    })
    statuses.push(response.statusCode)
  }
  t.same(statuses.slice(0, 10), Array(10).fill(401))
  t.same(statuses.slice(10), Array(20).fill(429), 'every guess past the overall limit, whatever address it claims')
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })).statusCode, 204, 'the right key passes')
})
