import t from 'tap'
import { build, eventually, type Harness } from '../helper.js'
import { startRedis } from '../helpers/redis.js'
import { KratosDouble } from '../doubles/kratos.js'

const redis = await startRedis()
t.teardown(() => redis.close())

const metric = async (relay: Harness, pattern: RegExp): Promise<number> => {
  const text = (await relay.app.inject('/metrics')).body
  return Number(pattern.exec(text)?.[1] ?? Number.NaN)
}

t.test('a Kratos admin URL with a path prefix too many completes no revocation: the jobs wait, and complete once it is fixed', async (t) => {
  const kratos = await new KratosDouble().listen()
  t.teardown(() => kratos.close())
  kratos.expectStrays()
  const env = { REDIS_KEY_PREFIX: `${redis.prefix}proof:`, KRATOS_ADMIN_URL: `${kratos.url}/admin`, REVOCATION_MAX_ATTEMPTS: '1', REVOCATION_MAX_AGE: '60' }
  const wrong = await build(t, { redis, kratos, env, deps: { adminProofRetryMs: 100 } })
  const { identityId, sid } = await wrong.login(2)
  t.equal((await wrong.logout(await wrong.hydra.logoutToken(sid))).statusCode, 200, 'the logout is accepted and queued')

  t.ok(await eventually(async () => await metric(wrong, /logout_relay_revocations_total\{outcome="held",kind="kratos-sessions",status=""\} (\d+)/) >= 2, 3000),
    'the revocation is held, again and again')
  t.equal(await metric(wrong, /logout_relay_admin_api_proven\{service="kratos"\} (\d+)/), 0, 'the metric says the URL is not proven')
  t.equal(await metric(wrong, /logout_relay_admin_api_proven\{service="hydra"\} (\d+)/), 1)
  t.notMatch((await wrong.app.inject('/metrics')).body, /logout_relay_revocations_total\{outcome="(succeeded|dead_lettered)"/, 'never succeeded, never dead-lettered, though one attempt is allowed')
  t.same(kratos.callsOf('deleteIdentitySessions'), [], 'no DELETE went out')
  t.equal(kratos.activeSessions(identityId), 2, 'the sessions are still there, and the relay does not pretend otherwise')
  await eventually(() => wrong.logs.some((line) => line.includes('is not Kratos')))
  const said = wrong.logs.map((line) => JSON.parse(line) as { level: number, msg: string, fix?: string }).find((line) => /KRATOS_ADMIN_URL is not Kratos' admin API/.test(line.msg))
  t.equal(said?.level, 50, 'an error log says why')
  t.match(said?.fix, 'remove the path "/admin" from KRATOS_ADMIN_URL')
  await wrong.app.close()

  // Restarted with the fixed environment, against the same Redis.
  const fixed = await build(t, { redis, kratos, hydra: wrong.hydra, env: { ...env, KRATOS_ADMIN_URL: kratos.url }, deps: { adminProofRetryMs: 100 } })
  const [call] = await kratos.waitForCalls('deleteIdentitySessions', 1, 15_000)
  t.equal(call?.params['id'], identityId, 'the held revocation completes')
  t.equal(kratos.activeSessions(identityId), 0)
  t.ok(await eventually(async () => await metric(fixed, /logout_relay_admin_api_proven\{service="kratos"\} (\d+)/) === 1))
})

t.test("Hydra's public port as HYDRA_ADMIN_URL: an admin logout's Hydra steps wait", async (t) => {
  const { HydraDouble } = await import('../doubles/hydra.js')
  const publicPort = await HydraDouble.start({ publicPort: {} })
  t.teardown(() => publicPort.close())
  const relay = await build(t, { redis, env: { HYDRA_ADMIN_URL: publicPort.url, ADMIN_API_KEYS: 'admin-key-0123456789abcdef' }, deps: { adminProofRetryMs: 100 } })
  const { identityId } = await relay.login(1)
  const answer = await relay.app.inject({ method: 'POST', url: `/admin/identities/${identityId}/logout`, headers: { authorization: 'Bearer admin-key-0123456789abcdef' } })
  t.equal(answer.statusCode, 202)
  t.ok(await eventually(async () => await metric(relay, /logout_relay_revocations_total\{outcome="held",kind="hydra-login-session",status=""\} (\d+)/) >= 1, 3000))
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(publicPort.strays.filter((stray) => stray.startsWith('DELETE')), [], 'no revocation went to the public port')
  t.equal(await metric(relay, /logout_relay_admin_api_proven\{service="hydra"\} (\d+)/), 0)
})
