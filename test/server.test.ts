import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { HydraDouble } from './doubles/hydra.js'
import { KratosDouble } from './doubles/kratos.js'
import { HOOK_KEY, checkContracts } from './helper.js'
import { startRedis } from './helpers/redis.js'
import { startRelayProcess } from './helpers/relay-process.js'

t.test('a bad configuration prints every problem and exits non-zero', async (t) => {
  const relay = await startRelayProcess({
    env: { OIDC_ISSUER: 'nope', OIDC_ALGORITHMS: 'HS256', LOGIN_HOOK_API_KEYS: 'tiny' },
    waitUntilAlive: false
  })
  t.equal(await relay.exited, 78)
  const stderr = relay.output.join('\n')
  t.match(stderr, /invalid configuration/)
  t.match(stderr, /OIDC_ISSUER/)
  t.match(stderr, /OIDC_ALGORITHMS/)
  t.match(stderr, /LOGIN_HOOK_API_KEYS/)
  t.notMatch(stderr, /tiny/)
})

t.test('on its defaults it serves on the in-memory store, and says what is not configured', async (t) => {
  const relay = await startRelayProcess({ env: {} })
  t.teardown(() => relay.signal('SIGKILL'))
  t.equal((await fetch(`${relay.url}/health/ready`)).status, 200)
  const hook = await fetch(`${relay.url}/hooks/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(hook.status, 503)
  relay.signal('SIGTERM')
  t.equal(await relay.exited, 0)
  const log = relay.output.join('\n')
  t.match(log, /REDIS_URL is not set: using an in-memory store/)
  t.match(log, /login hook is not configured/)
  t.match(log, /"msg":"stopped"/)
})

t.test('SIGTERM: requests in flight finish, queued revocations stay in Redis, exit 0', async (t) => {
  const redis = await startRedis()
  const hydra = await HydraDouble.start()
  const kratos = await new KratosDouble().listen()
  t.teardown(async () => { await hydra.close(); await kratos.close(); await redis.close() })
  checkContracts(t, hydra, kratos)
  const relay = await startRelayProcess({
    env: {
      OIDC_ISSUER: hydra.issuer,
      KRATOS_ADMIN_URL: kratos.url,
      HYDRA_ADMIN_URL: hydra.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.prefix,
      LOGIN_HOOK_API_KEYS: HOOK_KEY
    }
  })
  t.teardown(() => relay.signal('SIGKILL'))
  const hook = (body: unknown): Promise<Response> => fetch(`${relay.url}/hooks/login`, {
    method: 'POST',
    headers: { authorization: `Bearer ${HOOK_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })

  // A revocation Kratos keeps refusing stays queued.
  const identityId = randomUUID()
  const sid = randomUUID()
  t.equal((await hook({ identity_id: identityId, sid })).status, 204)
  kratos.fail('deleteIdentitySessions', { status: 503 })
  const logout = await fetch(`${relay.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: await hydra.logoutToken(sid) })
  })
  t.equal(logout.status, 200)
  await kratos.waitForCalls('deleteIdentitySessions', 1)

  // A hook call that Hydra answers slowly is in flight when SIGTERM arrives.
  const request = hydra.addLoginRequest({ sessionId: randomUUID() })
  hydra.fail('getOAuth2LoginRequest', { kind: 'delay', ms: 600, times: 1 })
  const inFlight = hook({ identity_id: randomUUID(), login_challenge: request.challenge })
  await hydra.waitForArrivals('getOAuth2LoginRequest', 1)
  relay.signal('SIGTERM')
  t.equal((await inFlight).status, 204, 'the request in flight finished')
  t.equal(await relay.exited, 0)

  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const waiting = await client.zcard(`${redis.prefix}queue:{revocations}:waiting`)
  const active = await client.zcard(`${redis.prefix}queue:{revocations}:active`)
  t.equal(waiting + active, 1, 'the unfinished revocation is still queued for the next process')
})
