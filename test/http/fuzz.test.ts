import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { base64url } from 'jose'
import t from 'tap'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/token/logout-token.js'
import { createSigningKey } from '../doubles/hydra.js'
import { HOOK_KEY, build } from '../helper.js'
import { startRedis } from '../helpers/redis.js'

/**
 * Property tests: thousands of random and mutated requests at both POST routes. Whatever arrives,
 * the relay answers a documented status (never a 5xx here: Redis, Hydra and Kratos are all up), stays
 * up, and revokes nothing for a token that is not valid — although every sid the tokens name is
 * indexed, so an accepted token would revoke.
 */
const redis = await startRedis()
t.teardown(() => redis.close())
const relay = await build(t, { redis, env: { LOG_LEVEL: 'warn', HOOK_RATE_LIMIT: '1000000', AUTH_FAILURE_LIMIT: '1000000', AUTH_FAILURE_GLOBAL_LIMIT: '1000000' } })
const sids = await Promise.all(Array.from({ length: 8 }, async () => (await relay.login()).sid))
const attacker = await createSigningKey()
const realKey = relay.hydra.keys[0]
if (realKey === undefined) throw new Error('the Hydra double has no key')

const LOGOUT_STATUSES = new Set([400, 405, 413, 415])
const HOOK_STATUSES = new Set([204, 400, 401, 405, 409, 413, 415])

const printable = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.~+/=%&;:, {}[]"\'\\'.split('')), maxLength: 80 })
/** Any other headers a client may send, with printable names and values. */
const extraHeaders = fc.dictionary(
  fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_.,;:=/"'.split('')), maxLength: 60 }),
  { maxKeys: 4 }
)

const contentType = fc.oneof(
  fc.constant('application/x-www-form-urlencoded'),
  fc.constant('application/x-www-form-urlencoded; charset=utf-8'),
  fc.constant('application/json'),
  fc.constant('text/plain'),
  fc.constant('multipart/form-data; boundary=x'),
  printable.map((value) => `application/${value.replace(/[^a-z]/g, '') || 'x'}`)
)

/** A claims set that breaks at least one rule of §2.6, signed by Hydra's real key. */
const brokenClaims = fc.record({
  sid: fc.constantFrom(...sids),
  breakage: fc.constantFrom(
    { nonce: 'n' }, { nonce: '' }, { events: {} }, { events: [] }, { events: { [BACKCHANNEL_LOGOUT_EVENT]: 'x' } },
    { iss: 'https://evil.example/' }, { iss: undefined }, { aud: [] }, { aud: 7 }, { aud: undefined },
    { iat: undefined }, { iat: 'now' }, { iat: 1 }, { iat: 4_102_444_800 }, { exp: 1 }, { nbf: 4_102_444_800 },
    { jti: undefined }, { jti: '' }, { jti: 3 }, { sid: undefined }, { sid: 5 }, { sid: '' }
  ),
  extra: fc.dictionary(fc.string({ maxLength: 8 }).filter((key) => !['iss', 'aud', 'iat', 'exp', 'nbf', 'jti', 'sid', 'sub', 'events', 'nonce'].includes(key)), fc.jsonValue(), { maxKeys: 3 })
})

async function signBroken ({ sid, breakage, extra }: { sid: string, breakage: Record<string, unknown>, extra: Record<string, unknown> }): Promise<string> {
  return await relay.hydra.logoutToken(sid, { claims: { ...extra, ...breakage } })
}

/** Mutations of a valid token that must each make it invalid. */
type Mutation =
  | { kind: 'flip', index: number, char: string }
  | { kind: 'truncate', length: number }
  | { kind: 'resign' }
  | { kind: 'alg', alg: string }
  | { kind: 'segments', count: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), index: fc.nat(), char: fc.constantFrom(...'AQgw-_0'.split('')) }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat() }),
  fc.record({ kind: fc.constant('resign' as const) }),
  fc.record({ kind: fc.constant('alg' as const), alg: fc.constantFrom('none', 'HS256', 'RS512', 'ES256', '') }),
  fc.record({ kind: fc.constant('segments' as const), count: fc.integer({ min: 1, max: 6 }).filter((count) => count !== 3) })
)

/** The mutated token, or undefined when the mutation happens to change nothing that is signed. */
async function mutate (change: Mutation): Promise<string | undefined> {
  const sid = sids[0] ?? ''
  const valid = await relay.hydra.logoutToken(sid)
  const [header = '', payload = '', signature = ''] = valid.split('.')
  switch (change.kind) {
    case 'flip': {
      const index = change.index % valid.length
      if (valid[index] === change.char || valid[index] === '.') return undefined
      const flipped = valid.slice(0, index) + change.char + valid.slice(index + 1)
      // The last character of a base64url segment may carry only padding bits: same bytes, same token.
      const same = flipped.split('.').every((part, i) => Buffer.from(base64url.decode(part)).equals(Buffer.from(base64url.decode(valid.split('.')[i] ?? ''))))
      return same ? undefined : flipped
    }
    case 'truncate':
      return valid.slice(0, change.length % valid.length)
    case 'resign':
      return await relay.hydra.logoutToken(sid, { key: { ...attacker, kid: realKey?.kid ?? '' } })
    case 'alg':
      return `${base64url.encode(JSON.stringify({ alg: change.alg, kid: realKey?.kid, typ: 'JWT' }))}.${payload}.${signature}`
    case 'segments':
      return Array.from({ length: change.count }, (_, i) => [header, payload, signature][i % 3]).join('.')
  }
}

t.test('random bodies and content types at /backchannel-logout', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      printable,
      fc.string({ maxLength: 300 }),
      fc.dictionary(printable, printable).map((fields) => new URLSearchParams(fields).toString()),
      fc.array(printable, { maxLength: 4 }).map((tokens) => tokens.map((token) => `logout_token=${encodeURIComponent(token)}`).join('&')),
      fc.constant(`logout_token=${'x'.repeat(70_000)}`)
    ),
    contentType,
    fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE'),
    extraHeaders,
    async (payload, type, method, headers) => {
      const response = await relay.app.inject({ method: method as 'POST', url: '/backchannel-logout', headers: { ...headers, 'content-type': type }, payload })
      if (!LOGOUT_STATUSES.has(response.statusCode)) throw new Error(`status ${response.statusCode} for ${type} ${payload.slice(0, 80)}`)
      if (response.headers['content-type']?.toString().startsWith('application/json') !== true) throw new Error('not JSON')
      const body = response.json() as { error?: unknown }
      if (typeof body.error !== 'string') throw new Error('no OAuth error')
    }
  ), { numRuns: 1500 })
  t.same(relay.kratos.revokedIdentities(), [])
})

t.test('mutated valid tokens are refused', async (t) => {
  await fc.assert(fc.asyncProperty(mutation, async (change) => {
    const token = await mutate(change)
    if (token === undefined) return
    const response = await relay.logout(token)
    // A mutated kid is a key the relay has not seen: within the JWKS cooldown that is the documented
    // 503 (retry later), as it might be a key rotated in since the last fetch.
    const documented = response.statusCode === 400 ||
      (response.statusCode === 503 && response.headers['retry-after'] !== undefined && response.json().error === 'temporarily_unavailable')
    if (!documented) throw new Error(`status ${response.statusCode} for ${JSON.stringify(change)}`)
  }), { numRuns: 800 })
  t.same(relay.kratos.revokedIdentities(), [], 'no mutation revoked anything')
})

t.test('well-signed tokens that break a rule are refused', async (t) => {
  await fc.assert(fc.asyncProperty(brokenClaims, async (claims) => {
    const response = await relay.logout(await signBroken(claims))
    if (response.statusCode !== 400) throw new Error(`status ${response.statusCode} for ${JSON.stringify(claims.breakage)}`)
  }), { numRuns: 600 })
  t.same(relay.kratos.revokedIdentities(), [], 'no broken token revoked anything')
})

t.test('random bodies and credentials at /hooks/login', async (t) => {
  const identity = randomUUID()
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.record({ identity_id: fc.oneof(fc.uuid(), printable, fc.jsonValue()), sid: fc.oneof(printable, fc.jsonValue()) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
      fc.record({ identity_id: fc.constant(identity), login_challenge: fc.oneof(printable, fc.jsonValue()) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
      printable,
      fc.constant(`{"identity_id":"${'a'.repeat(20_000)}"}`)
    ),
    fc.oneof(fc.constant(`Bearer ${HOOK_KEY}`), fc.constant(`Bearer ${HOOK_KEY}x`), fc.constant(`Basic ${HOOK_KEY}`), printable, fc.constant(undefined)),
    fc.oneof(fc.constant('application/json'), contentType),
    extraHeaders,
    async (payload, authorization, type, headers) => {
      const response = await relay.app.inject({
        method: 'POST',
        url: '/hooks/login',
        headers: { ...headers, 'content-type': type, ...(authorization !== undefined ? { authorization } : {}) },
        payload
      })
      if (!HOOK_STATUSES.has(response.statusCode)) throw new Error(`status ${response.statusCode} for ${payload.slice(0, 80)}`)
    }
  ), { numRuns: 1500 })
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200, 'still serving')
  t.same(relay.kratos.revokedIdentities(), [])
})
