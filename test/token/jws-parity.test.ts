import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import fc from 'fast-check'
import { CompactSign, compactVerify, createLocalJWKSet, exportJWK, type JWK } from 'jose'
import t from 'tap'
import { JWS_ALGORITHMS, JWS_ALGORITHM_NAMES, type AlgorithmSpec, type JwsAlgorithm } from '../../src/token/algorithms.js'
import { keyFitsAlgorithm, keyObjectOf, verifyJwsSignature } from '../../src/token/jws.js'

/**
 * jws.ts verifies signatures with Node's crypto instead of jose's (for speed); this holds it to jose
 * (the idea of node-oidc-provider's lru_parity test). Every algorithm of the table, keys that fit it
 * and keys that do not, valid tokens signed by jose and tampered ones: jws.ts must say what jose's
 * compactVerify says, for the key as the relay gets it (from jose's key set, a CryptoKey) and as a
 * KeyObject.
 */

interface TestKey {
  name: string
  privateKey: KeyObject
  publicKey: KeyObject
  /** The public JWK, where the key has one (RSA-PSS keys have none). */
  jwk: JWK | undefined
}

const pair = (name: string, generated: { privateKey: KeyObject, publicKey: KeyObject }): Omit<TestKey, 'jwk'> => ({ name, ...generated })
const generated = [
  pair('RSA 2048', generateKeyPairSync('rsa', { modulusLength: 2048 })),
  pair('RSA 2048 (another)', generateKeyPairSync('rsa', { modulusLength: 2048 })),
  pair('RSA 1024', generateKeyPairSync('rsa', { modulusLength: 1024 })),
  pair('RSA 2040', generateKeyPairSync('rsa', { modulusLength: 2040 })),
  pair('RSA-PSS 2048', generateKeyPairSync('rsa-pss', { modulusLength: 2048 })),
  pair('RSA-PSS 2048 SHA-256', generateKeyPairSync('rsa-pss', { modulusLength: 2048, hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256' })),
  pair('EC P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
  pair('EC P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' })),
  pair('EC P-521', generateKeyPairSync('ec', { namedCurve: 'P-521' })),
  pair('EC secp256k1', generateKeyPairSync('ec', { namedCurve: 'secp256k1' })),
  pair('Ed25519', generateKeyPairSync('ed25519')),
  pair('Ed448', generateKeyPairSync('ed448'))
]
const KEYS: TestKey[] = await Promise.all(generated.map(async (key) => ({
  ...key,
  jwk: key.publicKey.asymmetricKeyType === 'rsa-pss' ? undefined : await exportJWK(key.publicKey)
})))
const byName = new Map(KEYS.map((key) => [key.name, key]))

const spec = (alg: JwsAlgorithm): AlgorithmSpec => JWS_ALGORITHMS[alg]
const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

/** Can Node's crypto make a signature of this kind with this key at all (whatever jose thinks of the key)? */
function canSign (key: TestKey, alg: JwsAlgorithm): boolean {
  return tryRawSignature(alg, key.privateKey, 'x') !== undefined
}

/** {@link rawSignature}, or undefined where the key cannot make it (a key too short, or bound to another hash or salt). */
function tryRawSignature (...args: Parameters<typeof rawSignature>): Buffer | undefined {
  try {
    return rawSignature(...args)
  } catch {
    return undefined
  }
}

/** A signature of `alg`'s kind made with Node's crypto, for what jose will not sign (short keys, other curves, DER). */
function rawSignature (alg: JwsAlgorithm, key: KeyObject, input: string, options: { der?: boolean, saltLength?: number } = {}): Buffer {
  const { digest, keyType, pss } = spec(alg)
  const data = Buffer.from(input, 'latin1')
  if (pss === true) return sign(digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: options.saltLength ?? constants.RSA_PSS_SALTLEN_DIGEST })
  if (keyType === 'ec') return sign(digest, data, { key, dsaEncoding: options.der === true ? 'der' : 'ieee-p1363' })
  return sign(digest, data, key)
}

/** A token signed by jose's CompactSign where jose accepts the key for `alg`, else by Node's crypto. */
async function signToken (alg: JwsAlgorithm, key: TestKey, header: Record<string, unknown>, payload: string): Promise<string> {
  try {
    return await new CompactSign(Buffer.from(payload)).setProtectedHeader({ ...header, alg }).sign(key.privateKey)
  } catch {
    const input = `${b64(JSON.stringify({ ...header, alg }))}.${b64(payload)}`
    return `${input}.${b64(rawSignature(alg, key.privateKey, input))}`
  }
}

type Tamper =
  | { kind: 'none' }
  | { kind: 'flip', segment: 0 | 1 | 2, at: number, bit: number }
  | { kind: 'truncate', by: number }
  | { kind: 'append', text: string }
  | { kind: 'empty signature' }
  | { kind: 'signature of another alg', other: JwsAlgorithm }
  | { kind: 'header alg swapped', other: JwsAlgorithm }
  | { kind: 'DER signature' }
  | { kind: 'PSS salt', saltLength: number }

interface Case {
  alg: JwsAlgorithm
  signer: string
  /** Verified with the signer's own public key, or another key of the pool. */
  verifier: string | null
  /** The key as jose's key set hands it out (a CryptoKey), or a KeyObject. */
  form: 'key set' | 'KeyObject'
  header: Record<string, unknown>
  payload: string
  tamper: Tamper
}

/** The token the case describes, and the alg it is verified for (the alg of its header, as the relay reads it). */
async function tokenOf (c: Case): Promise<{ token: string, alg: JwsAlgorithm }> {
  const signer = byName.get(c.signer) as TestKey
  const tamper = c.tamper
  if (tamper.kind === 'header alg swapped') {
    const input = `${b64(JSON.stringify({ ...c.header, alg: tamper.other }))}.${b64(c.payload)}`
    return { token: `${input}.${b64(rawSignature(c.alg, signer.privateKey, input))}`, alg: tamper.other }
  }
  const token = await signToken(c.alg, signer, c.header, c.payload)
  const [header = '', payload = '', signature = ''] = token.split('.')
  const input = `${header}.${payload}`
  switch (tamper.kind) {
    case 'none':
      return { token, alg: c.alg }
    case 'flip': {
      const segments = [header, payload, signature]
      const bytes = Buffer.from(segments[tamper.segment] ?? '', 'latin1')
      if (bytes.length > 0) {
        const at = tamper.at % bytes.length
        bytes[at] = (bytes[at] ?? 0) ^ (1 << tamper.bit)
      }
      segments[tamper.segment] = bytes.toString('latin1')
      return { token: segments.join('.'), alg: c.alg }
    }
    case 'truncate':
      return { token: `${input}.${signature.slice(0, Math.max(0, signature.length - tamper.by))}`, alg: c.alg }
    case 'append':
      return { token: `${token}${tamper.text}`, alg: c.alg }
    case 'empty signature':
      return { token: `${input}.`, alg: c.alg }
    case 'signature of another alg': {
      // By the signer's key where it can make that kind of signature, else by a key of the pool that can.
      const key = canSign(signer, tamper.other) ? signer : KEYS.find((candidate) => canSign(candidate, tamper.other) && candidate.jwk !== undefined) as TestKey
      return { token: `${input}.${b64(rawSignature(tamper.other, key.privateKey, input))}`, alg: c.alg }
    }
    case 'DER signature': {
      const der = spec(c.alg).keyType === 'ec' ? tryRawSignature(c.alg, signer.privateKey, input, { der: true }) : undefined
      return { token: der === undefined ? token : `${input}.${b64(der)}`, alg: c.alg }
    }
    case 'PSS salt': {
      const salted = spec(c.alg).pss === true ? tryRawSignature(c.alg, signer.privateKey, input, { saltLength: tamper.saltLength }) : undefined
      return { token: salted === undefined ? token : `${input}.${b64(salted)}`, alg: c.alg }
    }
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * jws.ts' verdict, on the token as logout-token.ts hands it over (three non-empty base64url segments,
 * checked before any key is looked up) and the key as the relay has it (`keyObjectOf`).
 */
function relayVerdict (token: string, alg: string, key: unknown): boolean {
  const parts = token.split('.')
  const [header = '', payload = '', signature = ''] = parts
  if (parts.length !== 3 || ![header, payload, signature].every((segment) => BASE64URL.test(segment))) return false
  const keyObject = keyObjectOf(key)
  return keyObject !== undefined && verifyJwsSignature(`${header}.${payload}`, signature, alg, keyObject)
}

async function joseVerdict (token: string, alg: string, key: Parameters<typeof compactVerify>[1]): Promise<boolean> {
  try {
    await compactVerify(token, key, { algorithms: [alg] })
    return true
  } catch {
    return false
  }
}

/** Both verdicts for a case: the key from jose's key set (as the relay gets it), or the KeyObject itself. */
async function verdicts (c: Case): Promise<{ relay: boolean, jose: boolean, token: string }> {
  const { token, alg } = await tokenOf(c)
  const key = byName.get(c.verifier ?? c.signer) as TestKey
  if (c.form === 'KeyObject' || key.jwk === undefined) {
    return { relay: relayVerdict(token, alg, key.publicKey), jose: await joseVerdict(token, alg, key.publicKey), token }
  }
  // jose's key set selects the key for the header (kty, crv, alg) and hands out a CryptoKey; with
  // none that fits, the relay refuses the token (unknown kid) as compactVerify with the set does.
  const keySet = createLocalJWKSet({ keys: [key.jwk] })
  let selected: unknown
  try {
    selected = await keySet({ ...c.header, alg }, { payload: '', signature: '' })
  } catch {
    return { relay: false, jose: await joseVerdict(token, alg, keySet), token }
  }
  return { relay: relayVerdict(token, alg, selected), jose: await joseVerdict(token, alg, keySet), token }
}

t.test('keyFitsAlgorithm: a key fits an alg exactly when jose verifies a signature of that alg made with it', async (t) => {
  for (const key of KEYS) {
    for (const alg of JWS_ALGORITHM_NAMES) {
      let token: string | undefined
      try {
        token = await signToken(alg, key, {}, '{}')
      } catch {} // a key too short for the padding cannot sign at all
      const joseAccepts = canSign(key, alg) && token !== undefined && await joseVerdict(token, alg, key.publicKey)
      t.equal(keyFitsAlgorithm(key.publicKey, alg), joseAccepts, `${key.name} for ${alg}`)
    }
  }
  t.equal(keyFitsAlgorithm(KEYS[0]?.privateKey as KeyObject, 'RS256'), false, 'a private key fits nothing')
})

/** Cases per algorithm: about 6 s for the file on two busy cores. PARITY_SEED replays a failure's seed. */
const RUNS = 300

t.test('what the property found, kept as cases: both refused, as jose refuses them', async (t) => {
  // A signature segment of 4n+1 characters: Node's base64url decoder drops the last one, so a valid
  // signature with one character more verified in jws.ts; jose (atob) refuses the encoding.
  for (const [alg, name] of [['ES384', 'EC P-384'], ['ES512', 'EC P-521']] as const) {
    const key = byName.get(name) as TestKey
    const token = await signToken(alg, key, {}, '{"sid":"x"}')
    t.equal((token.split('.')[2] ?? '').length % 4, 0, `${alg}: a signature of 4n characters`)
    for (const extra of ['A', 'w', '_']) {
      const c: Case = { alg, signer: name, verifier: null, form: 'key set', header: {}, payload: '{"sid":"x"}', tamper: { kind: 'append', text: extra } }
      const { relay, jose, token: appended } = await verdicts(c)
      t.same({ relay, jose, length: (appended.split('.')[2] ?? '').length % 4 }, { relay: false, jose: false, length: 1 }, `${alg} with "${extra}" appended`)
    }
  }
  // An RSA-PSS KeyObject (no JWK form): jws.ts took it for PS*; jose cannot use it.
  for (const name of ['RSA-PSS 2048', 'RSA-PSS 2048 SHA-256']) {
    const c: Case = { alg: 'PS256', signer: name, verifier: null, form: 'KeyObject', header: {}, payload: '{}', tamper: { kind: 'none' } }
    const { relay, jose } = await verdicts(c)
    t.same({ relay, jose }, { relay: false, jose: false }, name)
  }
})

const algorithm = fc.constantFrom(...JWS_ALGORITHM_NAMES)
const tamper: fc.Arbitrary<Tamper> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Tamper>({ kind: 'none' }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), segment: fc.constantFrom(0 as const, 1 as const, 2 as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  fc.record({ kind: fc.constant('truncate' as const), by: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('append' as const), text: fc.string({ unit: fc.constantFrom(...'AQgw_-Zz09'), minLength: 1, maxLength: 4 }) }),
  fc.constant<Tamper>({ kind: 'empty signature' }),
  fc.record({ kind: fc.constant('signature of another alg' as const), other: algorithm }),
  fc.record({ kind: fc.constant('header alg swapped' as const), other: algorithm }),
  fc.constant<Tamper>({ kind: 'DER signature' }),
  fc.record({ kind: fc.constant('PSS salt' as const), saltLength: fc.constantFrom(0, 20, 48, 64, constants.RSA_PSS_SALTLEN_MAX_SIGN) })
)

for (const alg of JWS_ALGORITHM_NAMES) {
  const signers = KEYS.filter((key) => canSign(key, alg)).map((key) => key.name)
  // Keys that fit sign most tokens, so that the valid ones and their tampered twins are common.
  const fitting = signers.filter((name) => keyFitsAlgorithm((byName.get(name) as TestKey).publicKey, alg))
  const cases: fc.Arbitrary<Case> = fc.record({
    alg: fc.constant(alg),
    signer: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...fitting) }, fc.constantFrom(...signers)),
    verifier: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, fc.constantFrom(...KEYS.map((key) => key.name))),
    form: fc.constantFrom('key set' as const, 'KeyObject' as const),
    header: fc.record({ kid: fc.string({ maxLength: 8 }), typ: fc.constantFrom('JWT', 'logout+jwt') }, { requiredKeys: [] }),
    payload: fc.json({ maxDepth: 1 }),
    tamper
  })
  t.test(`${alg}: jws.ts and jose's compactVerify give the same verdict`, async (t) => {
    let accepted = 0
    await fc.assert(fc.asyncProperty(cases, async (c) => {
      const { relay, jose, token } = await verdicts(c)
      if (relay !== jose) throw new Error(`jws.ts says ${String(relay)}, jose says ${String(jose)} for ${token}`)
      if (jose) accepted++
    }), { numRuns: RUNS, ...(process.env['PARITY_SEED'] !== undefined ? { seed: Number(process.env['PARITY_SEED']) } : {}) })
    t.ok(accepted > 0, `${accepted} of ${RUNS} tokens verified: the property saw valid ones too`)
  })
}
