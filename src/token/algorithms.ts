/**
 * The one table of JWS algorithms a logout token may be signed with (RFC 7518 §3, RFC 8037): the
 * configuration accepts exactly these names, the verifier checks signatures by their row, and
 * `doctor` matches the issuer's keys against them.
 *
 * Symmetric (HS*) and `none` are absent on purpose: a back-channel logout token is signed with the
 * issuer's private key and checked against its JWKS (OIDC Back-Channel Logout 1.0 §2.6 step 2).
 */
export const JWS_ALGORITHMS = {
  RS256: { digest: 'sha256', keyType: 'rsa', jwk: { kty: 'RSA' } },
  RS384: { digest: 'sha384', keyType: 'rsa', jwk: { kty: 'RSA' } },
  RS512: { digest: 'sha512', keyType: 'rsa', jwk: { kty: 'RSA' } },
  PS256: { digest: 'sha256', keyType: 'rsa', pss: true, jwk: { kty: 'RSA' } },
  PS384: { digest: 'sha384', keyType: 'rsa', pss: true, jwk: { kty: 'RSA' } },
  PS512: { digest: 'sha512', keyType: 'rsa', pss: true, jwk: { kty: 'RSA' } },
  ES256: { digest: 'sha256', keyType: 'ec', curve: 'prime256v1', jwk: { kty: 'EC', crv: 'P-256' } },
  ES384: { digest: 'sha384', keyType: 'ec', curve: 'secp384r1', jwk: { kty: 'EC', crv: 'P-384' } },
  ES512: { digest: 'sha512', keyType: 'ec', curve: 'secp521r1', jwk: { kty: 'EC', crv: 'P-521' } },
  EdDSA: { digest: null, keyType: 'ed25519', jwk: { kty: 'OKP', crv: 'Ed25519' } },
  Ed25519: { digest: null, keyType: 'ed25519', jwk: { kty: 'OKP', crv: 'Ed25519' } }
} as const satisfies Record<string, AlgorithmSpec>

/** How one algorithm verifies with Node's crypto, and which JWKs can hold its keys. */
export interface AlgorithmSpec {
  /** The hash, or null where the algorithm names none (EdDSA). */
  digest: string | null
  keyType: 'rsa' | 'ec' | 'ed25519'
  /** The OpenSSL name of the curve, for ECDSA. */
  curve?: string
  /** RSASSA-PSS rather than PKCS #1 v1.5. */
  pss?: true
  /** The JWK `kty` (and `crv`) of a key for it (RFC 7518 §6, RFC 8037 §2). */
  jwk: { kty: string, crv?: string }
}

export type JwsAlgorithm = keyof typeof JWS_ALGORITHMS

export const JWS_ALGORITHM_NAMES = Object.keys(JWS_ALGORITHMS) as JwsAlgorithm[]

export function isJwsAlgorithm (name: unknown): name is JwsAlgorithm {
  return typeof name === 'string' && Object.hasOwn(JWS_ALGORITHMS, name)
}

/** The row of an algorithm, or undefined for any name not in the table. */
export function algorithmSpec (name: string): AlgorithmSpec | undefined {
  return isJwsAlgorithm(name) ? JWS_ALGORITHMS[name] : undefined
}

/** The algorithms a JWK of this `kty` and `crv` can verify, for keys that name no `alg`. */
export function algorithmsForJwk (kty: unknown, crv: unknown): JwsAlgorithm[] {
  return JWS_ALGORITHM_NAMES.filter((name) => {
    const { jwk } = JWS_ALGORITHMS[name] as AlgorithmSpec
    return jwk.kty === kty && (jwk.crv === undefined || jwk.crv === crv)
  })
}
