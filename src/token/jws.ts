import { KeyObject, constants, verify, type webcrypto } from 'node:crypto'
import { algorithmSpec } from './algorithms.js'

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

/** Whether the key can verify `alg` at all: its type, its curve, and for RSA at least 2048 bits. */
export function keyFitsAlgorithm (key: KeyObject, alg: string): boolean {
  const spec = algorithmSpec(alg)
  if (spec === undefined || key.type !== 'public') return false
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails
  switch (spec.keyType) {
    case 'rsa':
      return (type === 'rsa' || (spec.pss === true && type === 'rsa-pss')) && (details?.modulusLength ?? 0) >= MIN_RSA_BITS
    case 'ec':
      return type === 'ec' && details?.namedCurve === spec.curve
    case 'ed25519':
      return type === 'ed25519'
  }
}

/**
 * Verifies the signature of a compact JWS (RFC 7515 §5.2 step 8) over its signing input, the ASCII
 * of `<header>.<payload>` exactly as received. Synchronous: one RS256 verification takes some tens of
 * microseconds on the event loop, far less than a round trip through WebCrypto's thread pool.
 */
export function verifyJwsSignature (signingInput: string, signature: Buffer, alg: string, key: KeyObject): boolean {
  const spec = algorithmSpec(alg)
  if (spec === undefined || !keyFitsAlgorithm(key, alg)) return false
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
