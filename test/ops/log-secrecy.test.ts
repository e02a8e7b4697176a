import { randomUUID } from 'node:crypto'
import t from 'tap'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { HOOK_KEY, build, eventually } from '../helper.js'
import { spawnRedis } from '../helpers/redis.js'

t.test('a whole run, failures included, logs no token, key or Authorization header', async (t) => {
  const kratosToken = `ory_pat_kratos_${randomUUID()}`
  const hydraToken = `ory_pat_hydra_${randomUUID()}`
  const wrongKey = `wrong-key-${randomUUID()}`
  const adminKey = `admin-key-${randomUUID()}`
  const redis = await spawnRedis()
  const hydra = await HydraDouble.start({ token: hydraToken })
  const kratos = await new KratosDouble({ token: kratosToken }).listen()
  t.teardown(async () => { await hydra.close(); await kratos.close(); await redis.close() })
  const relay = await build(t, {
    redis,
    hydra,
    kratos,
    env: { LOG_LEVEL: 'trace', KRATOS_ADMIN_TOKEN: kratosToken, HYDRA_ADMIN_TOKEN: hydraToken, ADMIN_API_KEYS: adminKey, REVOCATION_MAX_ATTEMPTS: '2', REDIS_COMMAND_TIMEOUT: '300' }
  })
  const tokens: string[] = []
  const token = async (...args: Parameters<HydraDouble['logoutToken']>): Promise<string> => {
    const signed = await hydra.logoutToken(...args)
    tokens.push(signed)
    return signed
  }

  // Logins by sid and by challenge, a good key and a wrong one.
  const { identityId, sid } = await relay.login(2)
  const challenge = hydra.addLoginRequest({ sessionId: randomUUID() })
  t.equal((await relay.hook({ identity_id: randomUUID(), login_challenge: challenge.challenge })).statusCode, 204)
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() }, wrongKey)).statusCode, 401)
  hydra.fail('getOAuth2LoginRequest', { status: 500, times: 1 })
  t.equal((await relay.hook({ identity_id: randomUUID(), login_challenge: challenge.challenge })).statusCode, 503)

  // A good logout, its replay, invalid tokens, and one the form carries twice.
  const good = await token(sid)
  t.equal((await relay.logout(good)).statusCode, 200)
  t.equal((await relay.logout(good)).statusCode, 400)
  t.equal((await relay.logout(await token(sid, { claims: { nonce: 'x' } }))).statusCode, 400)
  t.equal((await relay.logout(await token(sid, { claims: { iss: 'https://evil/' } }))).statusCode, 400)
  const twice = await token(sid)
  t.equal((await relay.app.inject({ method: 'POST', url: `/backchannel-logout?logout_token=${twice}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `logout_token=${twice}&logout_token=${twice}` })).statusCode, 400)
  t.ok(await eventually(() => kratos.activeSessions(identityId) === 0))

  // Kratos refusing, then failing for good: retries and a dead letter, all logged.
  const second = await relay.login()
  kratos.fail('deleteIdentitySessions', { status: 401 })
  t.equal((await relay.logout(await token(second.sid))).statusCode, 200)
  t.ok(await eventually(() => relay.logs.some((line) => line.includes('dead letters'))))

  // A credentials change, by a good key and a wrong one: Hydra revokes the sid (with its admin token)
  // and echoes a logout token, which the relay answers as already handled.
  const changed = await relay.login()
  hydra.onRevokeLoginSession = async (revoked) => { await relay.logout(await token(revoked)) }
  const credentialsHook = (key: string) => relay.app.inject({
    method: 'POST',
    url: '/hooks/credentials-changed',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ identity_id: changed.identityId, flow: 'settings', method: 'password' })
  })
  t.equal((await credentialsHook(wrongKey)).statusCode, 401)
  t.equal((await credentialsHook(HOOK_KEY)).statusCode, 204)
  await hydra.waitForCalls('revokeOAuth2LoginSessions', 1)
  t.ok(await eventually(() => relay.logs.some((line) => line.includes('"outcome":"already_handled"'))))
  // An operator lists the dead letters and retries one through the admin API: its audit line follows.
  kratos.heal('deleteIdentitySessions')
  const admin = { authorization: `Bearer ${adminKey}` }
  const [letter] = (await relay.app.inject({ method: 'GET', url: '/admin/dead-letters', headers: admin })).json<{ dead_letters: Array<{ id: string }> }>().dead_letters
  t.equal((await relay.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter?.id ?? ''}/retry`, headers: admin })).statusCode, 202)
  t.ok(await eventually(() => kratos.activeSessions(second.identityId) === 0))
  t.ok(await eventually(() => relay.logs.some((line) => line.includes('"audit":true') && line.includes('operator-retry'))))

  // Redis down: 503s and connection errors logged.
  await redis.stop()
  t.equal((await relay.logout(await token(randomUUID()))).statusCode, 503)
  t.equal((await relay.hook({ identity_id: randomUUID(), sid: randomUUID() })).statusCode, 503)
  await redis.restart()

  const log = relay.logs.join('\n')
  t.ok(relay.logs.length > 20, `${relay.logs.length} log lines captured`)
  for (const secret of [...tokens, HOOK_KEY, wrongKey, adminKey, kratosToken, hydraToken]) {
    t.notOk(log.includes(secret), `the log does not contain ${secret.slice(0, 12)}…`)
  }
  for (const signed of tokens) {
    const [, payload = '', signature = ''] = signed.split('.')
    t.notOk(log.includes(payload) || log.includes(signature), 'nor a token\'s claims or signature')
  }
  t.notMatch(log, /authorization/i, 'no Authorization header')
  t.notMatch(log, /Bearer /, 'no Bearer credential')
})
