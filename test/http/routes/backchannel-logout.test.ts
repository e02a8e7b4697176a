import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildApp } from '../../../src/app.js'
import { loadConfig } from '../../../src/config.js'
import { createLogger } from '../../../src/ops/logger.js'
import { HydraDouble } from '../../doubles/hydra.js'
import { KratosDouble } from '../../doubles/kratos.js'
import { build, captureLines, eventually, type Harness } from '../../helper.js'
import { spawnRedis, startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

t.test('a Hydra logout for an indexed sid revokes every Kratos session of the identity', async (t) => {
  const relay = await build(t, { redis })
  const { identityId, sid } = await relay.login(3)
  const response = await relay.logout(await relay.hydra.logoutToken(sid))
  t.equal(response.statusCode, 200)
  t.equal(response.body, '')
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.headers['pragma'], 'no-cache')
  const [call] = await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.equal(call?.params['id'], identityId)
  t.equal(relay.kratos.activeSessions(identityId), 0)
})

t.test('one revocation per sid, however many clients Hydra notifies', async (t) => {
  const relay = await build(t, { redis })
  const { identityId, sid } = await relay.login(2)
  for (const clientId of ['app-a', 'app-b', 'app-c']) {
    const response = await relay.logout(await relay.hydra.logoutToken(sid, { clientId }))
    t.equal(response.statusCode, 200, `token for ${clientId}`)
  }
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(relay.kratos.revokedIdentities(), [identityId], 'exactly one Kratos call')
})

t.test('a replayed token is refused and revokes nothing more', async (t) => {
  const relay = await build(t, { redis })
  const { sid } = await relay.login()
  const token = await relay.hydra.logoutToken(sid)
  t.equal((await relay.logout(token)).statusCode, 200)
  const replay = await relay.logout(token)
  t.equal(replay.statusCode, 400)
  t.same(replay.json(), { error: 'invalid_request', error_description: 'logout_token was already used (jti)' })
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(relay.kratos.revokedIdentities().length, 1)
})

/**
 * Sends one token again and again, every 100 ms, to each relay in turn, until every relay refuses it
 * as too old (or 10 s pass); returns each answer's status and, for a 400, its reason.
 */
async function replayThroughItsLife (relays: Harness[], token: string): Promise<string[]> {
  const answers: string[] = []
  const deadline = Date.now() + 10_000
  const tooOld = new Set<number>()
  for (let i = 0; tooOld.size < relays.length && Date.now() < deadline; i++) {
    const index = i % relays.length
    const response = await relays[index]?.logout(token)
    const description = response?.statusCode === 400 ? String(response.json().error_description) : ''
    if (/iat/.test(description)) tooOld.add(index)
    answers.push(response?.statusCode === 200 ? '200' : /already used/.test(description) ? 'replay' : /iat/.test(description) ? 'too old' : `${response?.statusCode}: ${description}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return answers
}

t.test('a token is accepted once in its whole life, though its iat is a tolerance ahead of the clock', async (t) => {
  const relay = await build(t, { redis, env: { LOGOUT_TOKEN_MAX_AGE: '2', CLOCK_TOLERANCE: '1' } })
  const { sid } = await relay.login()
  const token = await relay.hydra.logoutToken(sid, { claims: { iat: Math.floor(Date.now() / 1000) + 1 } })
  const answers = await replayThroughItsLife([relay], token)
  t.equal(answers[0], '200', 'accepted at first delivery')
  t.same(answers.filter((answer) => answer === '200'), ['200'], 'and never again')
  t.ok(answers.slice(1).every((answer) => answer === 'replay' || answer === 'too old'), answers.join(', '))
  t.equal(answers.at(-1), 'too old', 'until it is too old anyway')
})

t.test('two replicas whose clocks are a tolerance off the issuer\'s, either way, accept a token once', async (t) => {
  const env = { LOGOUT_TOKEN_MAX_AGE: '2', CLOCK_TOLERANCE: '1', REDIS_KEY_PREFIX: `${redis.prefix}${randomUUID().slice(0, 8)}:` }
  const ahead = await build(t, { redis, env, deps: { clock: () => Date.now() + 1000 } })
  const behind = await build(t, { redis, env, hydra: ahead.hydra, kratos: ahead.kratos, deps: { clock: () => Date.now() - 1000 } })
  const { sid } = await ahead.login()
  const token = await ahead.hydra.logoutToken(sid)
  const answers = await replayThroughItsLife([ahead, behind], token)
  t.equal(answers[0], '200')
  t.same(answers.filter((answer) => answer === '200'), ['200'], answers.join(', '))
})

t.test('an unknown sid succeeds with nothing to revoke; a late login hook for it revokes at once', async (t) => {
  const relay = await build(t, { redis })
  const sid = randomUUID()
  const identityId = randomUUID()
  relay.kratos.addSessions(identityId, 2)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(relay.kratos.revokedIdentities(), [], 'nobody to revoke yet')

  t.equal((await relay.hook({ identity_id: identityId, sid })).statusCode, 204)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])
  t.equal(relay.kratos.activeSessions(identityId), 0)

  t.equal((await relay.hook({ identity_id: identityId, sid })).statusCode, 204, 'a retried hook is harmless')
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid, { clientId: 'app-b' }))).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(relay.kratos.revokedIdentities(), [identityId], 'still one revocation for the sid')
})

t.test('an unindexed sid with a sub that is a Kratos identity id revokes that identity', async (t) => {
  const relay = await build(t, { redis })
  const identityId = randomUUID()
  relay.kratos.addSessions(identityId)
  const token = await relay.hydra.logoutToken(randomUUID(), { claims: { sub: identityId }, header: { typ: 'logout+jwt' } })
  t.equal((await relay.logout(token)).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])

  const subOnly = await relay.hydra.logoutToken('', { claims: { sid: undefined, sub: identityId } })
  t.equal((await relay.logout(subOnly)).statusCode, 200, 'sub alone works too')
  await relay.kratos.waitForCalls('deleteIdentitySessions', 2)

  const foreign = await relay.hydra.logoutToken(randomUUID(), { claims: { sub: 'not-a-kratos-id' } })
  t.equal((await relay.logout(foreign)).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.kratos.revokedIdentities().length, 2, 'a sub that is no identity id revokes nothing')
})

t.test('Kratos answering 404 (no sessions left) is success, not a retry', async (t) => {
  const relay = await build(t, { redis })
  const { sid } = await relay.login(0)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 1)
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_revocations_total\{outcome="succeeded",kind="kratos-sessions",status="[0-9]*"\} 1/)
})

t.test('Kratos down, then back: the revocation is retried until it lands', async (t) => {
  const relay = await build(t, { redis })
  const { identityId, sid } = await relay.login(2)
  relay.kratos.fail('deleteIdentitySessions', { status: 503, times: 2 })
  relay.kratos.fail('deleteIdentitySessions', { kind: 'reset', times: 1 })
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200, 'accepted while Kratos is down')
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0), 'revoked once Kratos is back')
  t.ok(relay.kratos.callsOf('deleteIdentitySessions').length >= 2)
  t.ok(relay.logs.some((line) => line.includes('will retry')), 'each failure is logged')
})

t.test('Kratos refusing the relay (401) is retried and logged as an error', async (t) => {
  const relay = await build(t, { redis })
  const { identityId, sid } = await relay.login()
  relay.kratos.fail('deleteIdentitySessions', { status: 401, times: 2 })
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0))
  const refusal = relay.logs.map((line) => JSON.parse(line) as { level: number, msg: string }).find((entry) => entry.msg.startsWith('revocation refused'))
  t.equal(refusal?.level, 50, 'logged at error level')
})

t.test('a job that keeps failing ends in the dead letters, with an error log and a metric', async (t) => {
  const relay = await build(t, { redis, env: { REVOCATION_MAX_ATTEMPTS: '3' } })
  const { sid } = await relay.login()
  relay.kratos.fail('deleteIdentitySessions', { status: 500 })
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 3)
  t.ok(await eventually(() => relay.logs.some((line) => line.includes('dead letters'))))
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_dead_letters 1/)
  t.match(metrics, /logout_relay_dead_lettered_total 1/)
  t.match(metrics, /logout_relay_revocations_total\{outcome="dead_lettered",kind="kratos-sessions",status="[0-9]*"\} 1/)
})

t.test('the JWKS unreachable: 503, and the same token succeeds when Hydra resends it', async (t) => {
  const relay = await build(t, { redis })
  const { identityId, sid } = await relay.login()
  const token = await relay.hydra.logoutToken(sid)
  relay.hydra.fail('discoverJsonWebKeys', { status: 500, times: 1 })
  const first = await relay.logout(token)
  t.equal(first.statusCode, 503)
  t.equal(first.headers['retry-after'], '5')
  t.equal(first.json().error, 'temporarily_unavailable')
  const resent = await relay.logout(token)
  t.equal(resent.statusCode, 200, 'the jti was not consumed by the failed delivery')
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0))
})

t.test('Redis down: 503 with Retry-After, nothing consumed; after Redis returns the resent token succeeds', async (t) => {
  const own = await spawnRedis({ appendOnly: true })
  t.teardown(() => own.close())
  const relay = await build(t, { redis: own, env: { REDIS_COMMAND_TIMEOUT: '500' } })
  const { identityId, sid } = await relay.login()
  const token = await relay.hydra.logoutToken(sid)
  await own.stop()
  const down = await relay.logout(token)
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'], '5')
  t.equal((await relay.app.inject('/health/ready')).statusCode, 503)
  const hookDown = await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })
  t.equal(hookDown.statusCode, 503)
  await own.restart()
  t.ok(await eventually(async () => (await relay.app.inject('/health/ready')).statusCode === 200, 10_000), 'ready again without a restart')
  t.equal((await relay.logout(token)).statusCode, 200)
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0))
})

t.test('a relay restarted with queued jobs revokes them', async (t) => {
  const hydra = await HydraDouble.start()
  const kratos = await new KratosDouble().listen()
  t.teardown(async () => { await hydra.close(); await kratos.close() })
  const first = await build(t, { redis, hydra, kratos, deps: { startWorker: false } })
  const logins = [await first.login(), await first.login(), await first.login()]
  for (const { sid } of logins) t.equal((await first.logout(await hydra.logoutToken(sid))).statusCode, 200)
  await first.app.close()
  t.same(kratos.revokedIdentities(), [], 'nothing ran before the restart')

  const lines: string[] = []
  const second = await buildApp(loadConfig({
    OIDC_ISSUER: hydra.issuer, KRATOS_ADMIN_URL: kratos.url, HYDRA_ADMIN_URL: hydra.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: first.config.redis.keyPrefix
  }), { logger: createLogger('info', captureLines(lines)), pollIntervalMs: 50 })
  t.teardown(() => second.close())
  await kratos.waitForCalls('deleteIdentitySessions', 3)
  t.same(kratos.revokedIdentities().sort(), logins.map((login) => login.identityId).sort())
})

t.test('every invalid request is a 400 in OAuth form, and revokes nothing', async (t) => {
  const relay = await build(t, { redis })
  const { sid } = await relay.login()
  const post = (payload: string, contentType = 'application/x-www-form-urlencoded') =>
    relay.app.inject({ method: 'POST', url: '/backchannel-logout', headers: { 'content-type': contentType }, payload })

  const token = await relay.hydra.logoutToken(sid)
  const cases: Array<[string, Promise<{ statusCode: number, json: () => { error: string, error_description: string } }>, number, string]> = [
    ['no logout_token', post('other=1'), 400, 'logout_token is required'],
    ['empty logout_token', post('logout_token='), 400, 'logout_token is required'],
    ['logout_token twice', post(`logout_token=${token}&logout_token=${token}`), 400, 'logout_token must be sent once'],
    ['garbage', post('logout_token=abc'), 400, 'logout_token is not a signed JWT'],
    ['wrong audience', relay.hydra.logoutToken(sid, { claims: { iss: 'https://elsewhere/' } }).then((bad) => post(`logout_token=${bad}`)), 400, 'logout_token iss is not the configured issuer'],
    ['nonce', relay.hydra.logoutToken(sid, { claims: { nonce: 'n' } }).then((bad) => post(`logout_token=${bad}`)), 400, 'logout_token must not carry a nonce'],
    ['JSON body', post(JSON.stringify({ logout_token: token }), 'application/json'), 415, ''],
    ['text body', post(`logout_token=${token}`, 'text/plain'), 415, '']
  ]
  for (const [name, pending, status, description] of cases) {
    const response = await pending
    t.equal(response.statusCode, status, name)
    t.equal(response.json().error, 'invalid_request', `${name}: OAuth error`)
    if (description !== '') t.equal(response.json().error_description, description, `${name}: description`)
  }
  const get = await relay.app.inject({ method: 'GET', url: '/backchannel-logout' })
  t.equal(get.statusCode, 405)
  t.equal(get.headers['allow'], 'POST')
  const huge = await post(`logout_token=${'a'.repeat(70_000)}`)
  t.equal(huge.statusCode, 413)

  const extra = await post(`logout_token=${token}&state=ignored&foo=bar`)
  t.equal(extra.statusCode, 200, 'unknown form fields are ignored')
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(relay.kratos.revokedIdentities().length, 1, 'only the valid request revoked')

  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_logout_tokens_total\{outcome="rejected",reason="nonce"\} 1/)
  t.match(metrics, /logout_relay_logout_tokens_total\{outcome="rejected",reason="iss"\} 1/)
  t.match(metrics, /logout_relay_logout_tokens_total\{outcome="queued",reason=""\} 1/)
})
