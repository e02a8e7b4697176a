import { randomUUID } from 'node:crypto'
import { SignJWT, base64url, createLocalJWKSet, exportSPKI, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { isRelayError } from '../../src/errors.js'
import { BACKCHANNEL_LOGOUT_EVENT, createLogoutTokenVerifier, type LogoutTokenVerifierOptions } from '../../src/token/logout-token.js'
import { HydraDouble, createSigningKey } from '../doubles/hydra.js'

const hydra = await HydraDouble.start()
t.teardown(() => hydra.close())
const now = (): number => Math.floor(Date.now() / 1000)

function verifier (options: Partial<LogoutTokenVerifierOptions> = {}) {
  return createLogoutTokenVerifier({
    issuer: hydra.issuer,
    audiences: [],
    algorithms: ['RS256'],
    maxAgeSeconds: 300,
    clockToleranceSeconds: 30,
    requireExp: false,
    keys: createLocalJWKSet({ keys: hydra.keys.map((key) => key.publicJwk) }),
    ...options
  })
}

/** Asserts that verification fails with this rejection reason, as a 400. */
async function rejects (t: Test, token: Promise<string> | string, reason: string, options: Partial<LogoutTokenVerifierOptions> = {}): Promise<void> {
  try {
    await verifier(options)(await token)
    t.fail(`expected rejection "${reason}"`)
  } catch (err) {
    t.ok(isRelayError(err), 'a RelayError')
    if (isRelayError(err)) {
      t.equal(err.reason, reason, `reason ${reason}`)
      t.equal(err.status, 400)
    }
  }
}

function unsigned (header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}.`
}

t.test('accepts a token shaped exactly as Hydra signs it', async (t) => {
  const sid = randomUUID()
  const claims = await verifier()(await hydra.logoutToken(sid, { clientId: 'app-a' }))
  t.equal(claims.sid, sid)
  t.same(claims.aud, ['app-a'])
  t.equal(claims.iss, hydra.issuer)
  t.equal(claims.sub, undefined)
  t.equal(claims.exp, undefined)
})

t.test('accepts a token as other providers sign it: sub, sid, exp, typ logout+jwt, aud string, ES256', async (t) => {
  const key = await createSigningKey('ES256')
  const sub = randomUUID()
  const token = await new SignJWT({
    iss: hydra.issuer,
    aud: 'app-b',
    iat: now(),
    exp: now() + 120,
    jti: randomUUID(),
    sub,
    sid: 'opaque-sid',
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {}, 'https://example.com/other-event': { x: 1 } },
    unknown_claim: 'ignored'
  }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'logout+jwt' }).sign(key.privateKey)
  const claims = await verifier({ algorithms: ['ES256'], keys: createLocalJWKSet({ keys: [key.publicJwk] }) })(token)
  t.equal(claims.sub, sub)
  t.same(claims.aud, ['app-b'])
  t.equal(typeof claims.exp, 'number')
})

t.test('header rules', async (t) => {
  const sid = randomUUID()
  await rejects(t, unsigned({ alg: 'none', typ: 'JWT' }, { iss: hydra.issuer, aud: ['a'], iat: now(), jti: 'j', sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }), 'alg',
    { algorithms: ['RS256', 'none'] })

  // The classic confusion attack: HS256 keyed with the RSA public key. Refused even if configured.
  const { publicKey } = await generateKeyPair('RS256', { extractable: true })
  const secret = new TextEncoder().encode(await exportSPKI(publicKey))
  const hs = await new SignJWT({ iss: hydra.issuer, aud: ['a'], iat: now(), jti: 'j', sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret)
  await rejects(t, hs, 'alg', { algorithms: ['RS256', 'HS256'] })

  const es = await createSigningKey('ES256')
  await rejects(t, hydra.logoutToken(sid, { key: es }), 'alg')

  for (const typ of ['at+jwt', 'JWS', 'logout+JWT2', 42]) {
    await rejects(t, hydra.logoutToken(sid, { header: { typ } }), 'typ')
  }
  for (const typ of [undefined, 'JWT', 'jwt', 'logout+jwt', 'application/logout+jwt']) {
    const claims = await verifier()(await hydra.logoutToken(sid, { header: { typ } }))
    t.equal(claims.sid, sid, `typ ${String(typ)} accepted`)
  }
})

t.test('signature and keys', async (t) => {
  const sid = randomUUID()
  // Signed by another key that claims the published kid.
  const impostor = await createSigningKey()
  const forged = await hydra.logoutToken(sid, { key: { ...impostor, kid: hydra.keys[0]?.kid ?? '' } })
  await rejects(t, forged, 'signature')
  await rejects(t, hydra.logoutToken(sid, { key: impostor }), 'unknown_kid')

  const valid = await hydra.logoutToken(sid)
  const [header, payload, signature] = valid.split('.')
  const tampered = JSON.parse(new TextDecoder().decode(base64url.decode(payload ?? ''))) as Record<string, unknown>
  tampered['sid'] = randomUUID()
  await rejects(t, `${header}.${base64url.encode(JSON.stringify(tampered))}.${signature}`, 'signature')
})

t.test('malformed and encrypted tokens', async (t) => {
  await rejects(t, 'not-a-jwt', 'malformed')
  await rejects(t, 'a.b', 'malformed')
  await rejects(t, '%%%.eyJ9.sig', 'malformed')
  await rejects(t, 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d', 'encrypted')
  await rejects(t, 'x'.repeat(20_000), 'malformed')
  const valid = await hydra.logoutToken(randomUUID())
  const [header, , signature] = valid.split('.')
  await rejects(t, `${header}.${base64url.encode('not json')}.${signature}`, 'signature')
})

t.test('iss must be the configured issuer exactly', async (t) => {
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { iss: hydra.issuer.replace(/\/$/, '') } }), 'iss')
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { iss: 'https://evil.example/' } }), 'iss')
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { iss: undefined } }), 'iss')
})

t.test('aud must name an accepted client', async (t) => {
  const sid = randomUUID()
  const only = { audiences: ['app-a', 'app-b'] }
  t.same((await verifier(only)(await hydra.logoutToken(sid, { clientId: 'app-b' }))).aud, ['app-b'])
  t.same((await verifier(only)(await hydra.logoutToken(sid, { claims: { aud: ['other', 'app-a'] } }))).aud, ['other', 'app-a'])
  t.same((await verifier(only)(await hydra.logoutToken(sid, { claims: { aud: 'app-a' } }))).aud, ['app-a'])
  await rejects(t, hydra.logoutToken(sid, { clientId: 'app-c' }), 'aud', only)
  await rejects(t, hydra.logoutToken(sid, { claims: { aud: undefined } }), 'aud', only)
  await rejects(t, hydra.logoutToken(sid, { claims: { aud: undefined } }), 'aud')
  await rejects(t, hydra.logoutToken(sid, { claims: { aud: [] } }), 'aud')
  await rejects(t, hydra.logoutToken(sid, { claims: { aud: [42] } }), 'aud')
  await rejects(t, hydra.logoutToken(sid, { claims: { aud: {} } }), 'aud')
})

t.test('iat: present, not in the future beyond the tolerance, not older than the maximum age', async (t) => {
  const sid = randomUUID()
  await rejects(t, hydra.logoutToken(sid, { claims: { iat: undefined } }), 'iat')
  await rejects(t, hydra.logoutToken(sid, { claims: { iat: 'yesterday' } }), 'iat')
  await rejects(t, hydra.logoutToken(sid, { claims: { iat: now() + 31 + 5 } }), 'iat')
  await rejects(t, hydra.logoutToken(sid, { claims: { iat: now() - 300 - 30 - 5 } }), 'iat')
  t.ok(await verifier()(await hydra.logoutToken(sid, { claims: { iat: now() + 20 } })), 'within the tolerance ahead')
  t.ok(await verifier()(await hydra.logoutToken(sid, { claims: { iat: now() - 320 } })), 'within the tolerance past the maximum age')
})

t.test('exp: checked when present, required only in strict mode', async (t) => {
  const sid = randomUUID()
  await rejects(t, hydra.logoutToken(sid, { claims: { exp: now() - 60 } }), 'exp')
  t.ok(await verifier()(await hydra.logoutToken(sid, { claims: { exp: now() + 60 } })))
  t.ok(await verifier()(await hydra.logoutToken(sid)), 'absent exp is fine by default')
  await rejects(t, hydra.logoutToken(sid), 'exp', { requireExp: true })
  t.ok(await verifier({ requireExp: true })(await hydra.logoutToken(sid, { claims: { exp: now() + 60 } })))
  await rejects(t, hydra.logoutToken(sid, { claims: { nbf: now() + 120 } }), 'nbf')
})

t.test('jti must be present', async (t) => {
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { jti: undefined } }), 'jti')
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { jti: '' } }), 'jti')
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { jti: 7 } }), 'jti')
})

t.test('events must hold the back-channel logout member as an object', async (t) => {
  const sid = randomUUID()
  await rejects(t, hydra.logoutToken(sid, { claims: { events: undefined } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: [] } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: 'logout' } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: {} } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: { [BACKCHANNEL_LOGOUT_EVENT]: true } } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } } }), 'events')
  await rejects(t, hydra.logoutToken(sid, { claims: { events: { [BACKCHANNEL_LOGOUT_EVENT]: null } } }), 'events')
  t.ok(await verifier()(await hydra.logoutToken(sid, { claims: { events: { [BACKCHANNEL_LOGOUT_EVENT]: {}, other: {} } } })))
})

t.test('sid or sub, each a string', async (t) => {
  await rejects(t, hydra.logoutToken('', { claims: { sid: undefined } }), 'sid_sub')
  await rejects(t, hydra.logoutToken('', { claims: { sid: 12 } }), 'sid_sub')
  await rejects(t, hydra.logoutToken('', { claims: { sid: '' } }), 'sid_sub')
  await rejects(t, hydra.logoutToken(randomUUID(), { claims: { sub: { id: 1 } } }), 'sid_sub')
  const claims = await verifier()(await hydra.logoutToken('', { claims: { sid: undefined, sub: 'user-1' } }))
  t.equal(claims.sub, 'user-1')
  t.equal(claims.sid, undefined)
})

t.test('nonce must be absent, whatever its value', async (t) => {
  for (const nonce of ['n-0S6_WzA2Mj', '', null, 0]) {
    await rejects(t, hydra.logoutToken(randomUUID(), { claims: { nonce } }), 'nonce')
  }
})

t.test('every asymmetric algorithm the configuration allows verifies with a key of its kind', async (t) => {
  for (const alg of ['RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']) {
    const key = await createSigningKey(alg)
    const token = await hydra.logoutToken(randomUUID(), { key })
    const claims = await verifier({ algorithms: [alg], keys: createLocalJWKSet({ keys: [key.publicJwk] }) })(token)
    t.ok(claims.sid, `${alg} verifies`)
  }
})

t.test('the JWS itself: header extensions, encoding, key strength', async (t) => {
  const sid = randomUUID()
  const valid = await hydra.logoutToken(sid)
  // jose will not even sign these: sign them by hand, with Hydra's real key.
  const { KeyObject, sign: rawSign } = await import('node:crypto')
  const signer = hydra.keys[0]
  if (signer === undefined) throw new Error('no key')
  const handSigned = (header: Record<string, unknown>): string => {
    const encoded = `${base64url.encode(JSON.stringify({ alg: 'RS256', kid: signer.kid, typ: 'JWT', ...header }))}.${valid.split('.')[1] ?? ''}`
    return `${encoded}.${rawSign('sha256', Buffer.from(encoded), KeyObject.from(signer.privateKey)).toString('base64url')}`
  }
  t.ok(await verifier()(handSigned({})), 'the hand-signed token itself is valid')
  await rejects(t, handSigned({ crit: ['exp'] }), 'malformed')
  await rejects(t, handSigned({ crit: ['b64'], b64: false }), 'malformed')
  await rejects(t, handSigned({ b64: true }), 'malformed')
  const [header, payload, signature] = valid.split('.')
  await rejects(t, `${header}.${payload}.${signature}==`, 'malformed')
  await rejects(t, `${header}.${payload}.${(signature ?? '').slice(0, 10)}+${(signature ?? '').slice(11)}`, 'malformed')
  await rejects(t, `${header}..${signature}`, 'malformed')
  await rejects(t, `${header}.${payload}.`, 'malformed')

  // Signed well, but claims that are no JSON object.
  const key = hydra.keys[0]
  if (key === undefined) throw new Error('no key')
  for (const claims of ['[1,2]', '"text"', 'null']) {
    const { CompactSign } = await import('jose')
    const jws = await new CompactSign(new TextEncoder().encode(claims)).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey)
    await rejects(t, jws, 'malformed')
  }

  // An RSA key of 1024 bits is too weak to be trusted, even when the issuer publishes it.
  const { generateKeyPairSync, sign } = await import('node:crypto')
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const weakJwk = { ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256', use: 'sig' }
  const weakHeader = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'weak', typ: 'JWT' })).toString('base64url')
  const weakPayload = (await hydra.logoutToken(sid)).split('.')[1] ?? ''
  const weakSignature = sign('sha256', Buffer.from(`${weakHeader}.${weakPayload}`), weak.privateKey).toString('base64url')
  await rejects(t, `${weakHeader}.${weakPayload}.${weakSignature}`, 'signature', { keys: createLocalJWKSet({ keys: [weakJwk] }) })
})

t.test('a P-384 key cannot verify ES256, nor an RSA key EdDSA', async (t) => {
  const { keyFitsAlgorithm } = await import('../../src/token/jws.js')
  const { generateKeyPairSync } = await import('node:crypto')
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey
  const ed = generateKeyPairSync('ed25519').publicKey
  t.equal(keyFitsAlgorithm(p384, 'ES384'), true)
  t.equal(keyFitsAlgorithm(p384, 'ES256'), false)
  t.equal(keyFitsAlgorithm(rsa, 'RS256'), true)
  t.equal(keyFitsAlgorithm(rsa, 'PS256'), true)
  t.equal(keyFitsAlgorithm(rsa, 'EdDSA'), false)
  t.equal(keyFitsAlgorithm(ed, 'EdDSA'), true)
  t.equal(keyFitsAlgorithm(ed, 'RS256'), false)
  t.equal(keyFitsAlgorithm(rsa, 'HS256'), false)
  t.equal(keyFitsAlgorithm(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256'), false, 'only public keys')
})

t.test('no kid, several keys of the algorithm: each is tried', async (t) => {
  const [first, second] = [await createSigningKey(), await createSigningKey()]
  const keys = createLocalJWKSet({ keys: [first.publicJwk, second.publicJwk].map(({ kid: _kid, ...jwk }) => jwk) })
  const sid = randomUUID()
  const bySecond = await hydra.logoutToken(sid, { key: second, header: { kid: undefined } })
  t.equal((await verifier({ keys })(bySecond)).sid, sid, 'the second key verifies')
  const stranger = await createSigningKey()
  await rejects(t, hydra.logoutToken(sid, { key: stranger, header: { kid: undefined } }), 'signature', { keys })
})
