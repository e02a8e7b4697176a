import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { isRelayError } from '../../src/errors.js'
import { discoveryUrl } from '../../src/token/discovery.js'
import { createIssuerKeys, type IssuerKeysOptions } from '../../src/token/issuer-keys.js'
import { createLogoutTokenVerifier } from '../../src/token/logout-token.js'
import { HydraDouble, createSigningKey, type SigningKey } from '../doubles/hydra.js'
import { checkContracts } from '../helper.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A verifier of the issuer's tokens with the given key source and the relay's defaults. */
function verifierOf (issuer: string, keys: IssuerKeysOptions) {
  return createLogoutTokenVerifier({
    issuer,
    audiences: [],
    algorithms: ['RS256'],
    maxAgeSeconds: 300,
    clockToleranceSeconds: 30,
    requireExp: false,
    keys: createIssuerKeys(keys)
  })
}

async function setup (t: Test, options: Partial<IssuerKeysOptions> = {}) {
  const hydra = await HydraDouble.start()
  t.teardown(() => hydra.close())
  checkContracts(t, hydra)
  const verify = verifierOf(hydra.issuer, { issuer: hydra.issuer, timeoutMs: 2000, ...options })
  const fetches = (): number => hydra.callsOf('discoverJsonWebKeys').length
  return { hydra, verify, fetches }
}

async function outcome (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'ok'
  } catch (err) {
    return isRelayError(err) ? `${err.status} ${err.reason ?? err.code}` : `thrown ${String(err)}`
  }
}

t.test('discovery: <issuer>/.well-known/openid-configuration, trailing slash handled', async (t) => {
  t.equal(discoveryUrl('http://127.0.0.1:4444/'), 'http://127.0.0.1:4444/.well-known/openid-configuration')
  t.equal(discoveryUrl('https://auth.example.com/tenant'), 'https://auth.example.com/tenant/.well-known/openid-configuration')
})

t.test('fetches discovery and the JWKS once, then serves every token from the cache', async (t) => {
  const { hydra, verify, fetches } = await setup(t)
  for (let i = 0; i < 20; i++) t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok')
  t.equal(hydra.callsOf('discoverOidcConfiguration').length, 1)
  t.equal(fetches(), 1)
})

t.test('OIDC_JWKS_URL skips discovery', async (t) => {
  const { hydra, verify } = await setup(t, { jwksUrl: undefined })
  const direct = verifierOf(hydra.issuer, { issuer: 'http://unreachable.invalid/', jwksUrl: hydra.jwksUrl })
  t.equal(await outcome(direct(await hydra.logoutToken(randomUUID()))), 'ok')
  t.equal(hydra.callsOf('discoverOidcConfiguration').length, 0)
  t.ok(verify)
})

t.test('an unknown kid refetches at most once per cooldown', async (t) => {
  const { hydra, verify, fetches } = await setup(t, { cooldownMs: 1500 })
  const strangers = await Promise.all(Array.from({ length: 6 }, async () => await createSigningKey()))
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok')
  t.equal(fetches(), 1)

  const stranger = strangers.pop() as SigningKey
  // Within the cooldown of the first fetch: no refetch, and the token cannot be judged yet.
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: stranger }))), '503 ERR_JWKS_UNAVAILABLE')
  t.equal(fetches(), 1, 'no refetch inside the cooldown')

  await sleep(1600)
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: stranger }))), '400 unknown_kid')
  t.equal(fetches(), 2, 'one refetch after the cooldown')
  const burst = await Promise.all(strangers.map(async (key) => await hydra.logoutToken(randomUUID(), { key })))
  for (const token of burst) t.equal(await outcome(verify(token)), '503 ERR_JWKS_UNAVAILABLE')
  t.equal(fetches(), 2, 'a burst of unknown kids makes no further request')
})

t.test('a rotated key is picked up by the refetch', async (t) => {
  const { hydra, verify, fetches } = await setup(t, { cooldownMs: 1000 })
  const next = await createSigningKey()
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok')
  const rotated = await hydra.rotateKey(next)
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: rotated }))), '503 ERR_JWKS_UNAVAILABLE',
    'just after the last fetch: retry later, not a rejection')
  await sleep(1100)
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: rotated }))), 'ok')
  t.equal(fetches(), 2)
  const old = hydra.keys[1]
  if (old !== undefined) t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: old }))), 'ok', 'the old key still verifies')
})

t.test('an unreachable issuer is a 503, and the next token tries again', async (t) => {
  const { hydra, verify } = await setup(t)
  hydra.fail('discoverOidcConfiguration', { status: 500, times: 1 })
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), '503 ERR_JWKS_UNAVAILABLE')
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok')

  const fresh = await setup(t)
  fresh.hydra.fail('discoverJsonWebKeys', { kind: 'reset', times: 1 })
  t.equal(await outcome(fresh.verify(await fresh.hydra.logoutToken(randomUUID()))), '503 ERR_JWKS_UNAVAILABLE')
  fresh.hydra.fail('discoverJsonWebKeys', { kind: 'timeout', times: 1 })
  t.equal(await outcome(fresh.verify(await fresh.hydra.logoutToken(randomUUID()))), '503 ERR_JWKS_UNAVAILABLE')
  t.equal(await outcome(fresh.verify(await fresh.hydra.logoutToken(randomUUID()))), 'ok')
})

t.test('keys already fetched keep verifying while the issuer is unreachable', async (t) => {
  const { hydra, verify, fetches } = await setup(t, { cacheMaxAgeMs: 100, cooldownMs: 50 })
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok')
  await sleep(150)
  hydra.fail('discoverJsonWebKeys', { status: 503 })
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID()))), 'ok', 'stale keys still verify a known kid')
  t.ok(fetches() >= 2, 'a refresh was attempted')
  const stranger = await createSigningKey()
  t.equal(await outcome(verify(await hydra.logoutToken(randomUUID(), { key: stranger }))), '503 ERR_JWKS_UNAVAILABLE',
    'an unknown kid cannot be judged while the issuer is down')
})
