import { KeyObject, constants, verify, type webcrypto } from 'node:crypto'
import { algorithmSpec } from './algorithms.js'

// What this file relies on in jose (6.2.x), held by test/token/jws-parity.test.ts: jose's key sets
// (createLocalJWKSet, and createRemoteJWKSet over it) select a key by kid, kty, crv and alg and hand
// it out as a public WebCrypto CryptoKey imported for the header's alg (never a KeyObject, never an
// RSA-PSS KeyObject: an RSA JWK gives an 'rsa' key); with several candidates they throw
// JWKSMultipleMatchingKeys, an async iterator of those CryptoKeys (logout-token.ts tries each);
// compactVerify refuses RSA keys under 2048 bits and decodes base64url strictly (atob, or
// Uint8Array.fromBase64: a length of 4n+1 is no encoding); issuer-keys.ts uses the `jwksCache` and
// `customFetch` symbols of createRemoteJWKSet and the ExportedJWKSCache shape ({ jwks, uat }).

/** RSA keys shorter than this are refused (RFC 7518 §3.3, §3.5). */
const MIN_RSA_BITS = 2048

/** WebCrypto's key class, a global of Node (not exported by node:crypto before Node 22). */
const CryptoKeyClass = (globalThis as unknown as { CryptoKey: abstract new () => webcrypto.CryptoKey }).CryptoKey

const keyObjects = new WeakMap<webcrypto.CryptoKey, KeyObject>()

/**
 * The KeyObject of a verification key as jose's key sets hand them out (WebCrypto keys), converted
 * once per key; undefined for anything that is no asymmetric key (a secret, a JWK).
 */
export function keyObjectOf (key: unknown): KeyObject | undefined {
  if (key instanceof KeyObject) return key
  if (!(key instanceof CryptoKeyClass)) return undefined
  let object = keyObjects.get(key)
  if (object === undefined) keyObjects.set(key, object = KeyObject.from(key))
  return object
}

/**
 * Whether the key can verify `alg` at all: its type, its curve, and for RSA at least 2048 bits. An
 * RSA-PSS KeyObject (`rsa-pss`) fits nothing: it has no JWK form, and jose refuses it.
 */
export function keyFitsAlgorithm (key: KeyObject, alg: string): boolean {
  const spec = algorithmSpec(alg)
  if (spec === undefined || key.type !== 'public') return false
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails
  switch (spec.keyType) {
    case 'rsa':
      return type === 'rsa' && (details?.modulusLength ?? 0) >= MIN_RSA_BITS
    case 'ec':
      return type === 'ec' && details?.namedCurve === spec.curve
    case 'ed25519':
      return type === 'ed25519'
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * The bytes of a base64url segment (RFC 7515 §2), or undefined when it is no encoding: a character
 * outside the alphabet, or a length of 4n+1. Node's own decoder skips both; jose refuses them, and so
 * must the relay, or one signature would stand for several tokens.
 */
export function decodeBase64url (segment: string): Buffer | undefined {
  if (segment.length % 4 === 1 || !BASE64URL.test(segment)) return undefined
  return Buffer.from(segment, 'base64url')
}

/**
 * Verifies the signature of a compact JWS (RFC 7515 §5.2 steps 7–8): `signature` is its third
 * segment as received, `signingInput` the ASCII of `<header>.<payload>` exactly as received.
 * Synchronous: one RS256 verification takes some tens of microseconds on the event loop, far less
 * than a round trip through WebCrypto's thread pool.
 */
export function verifyJwsSignature (signingInput: string, signatureSegment: string, alg: string, key: KeyObject): boolean {
  const spec = algorithmSpec(alg)
  if (spec === undefined || !keyFitsAlgorithm(key, alg)) return false
  const signature = decodeBase64url(signatureSegment)
  if (signature === undefined) return false
  const data = Buffer.from(signingInput, 'latin1')
  try {
    if (spec.pss === true) {
      return verify(spec.digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
    }
    if (spec.keyType === 'ec') return verify(spec.digest, data, { key, dsaEncoding: 'ieee-p1363' }, signature)
    return verify(spec.digest, data, key, signature)
  } catch {
    return false
  }
}
