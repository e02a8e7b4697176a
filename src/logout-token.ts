import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { isRelayError, tokenRejected, type RelayError, type TokenRejection } from './errors.js'

/** The event member every logout token carries (OIDC Back-Channel Logout 1.0 §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** A logout token's header `typ` values accepted: none, `JWT` (as Hydra signs), or `logout+jwt` (§2.4). */
const ACCEPTED_TYPES = new Set(['jwt', 'logout+jwt'])

/** Longest token and claim values judged at all; anything longer is refused unparsed. */
const MAX_TOKEN_LENGTH = 16_384
const MAX_ID_LENGTH = 1024

/** The claims of a logout token that passed every check. */
export interface LogoutClaims {
  iss: string
  aud: string[]
  iat: number
  jti: string
  exp?: number
  sid?: string
  sub?: string
}

export interface LogoutTokenVerifierOptions {
  /** Exact expected `iss`, trailing slash included. */
  issuer: string
  /** Client ids accepted in `aud`; empty accepts any. */
  audiences: readonly string[]
  /** Allowed `alg` values; `none` and HS* are dropped whatever is passed. */
  algorithms: readonly string[]
  maxAgeSeconds: number
  clockToleranceSeconds: number
  /** Errata-1 strict mode: `exp` must be present. */
  requireExp: boolean
  keys: JWTVerifyGetKey
  /** Milliseconds since the epoch. */
  now?: () => number
}

export type LogoutTokenVerifier = (token: string) => Promise<LogoutClaims>

/**
 * Validates a logout token as OIDC Back-Channel Logout 1.0 §2.6 (with errata 1) asks, and as Hydra
 * signs it (RS256, `typ: JWT`, no `sub`, no `exp`). Every failure is a `RelayError` with a
 * {@link TokenRejection} reason; only an unreachable JWKS is `ERR_JWKS_UNAVAILABLE`.
 */
export function createLogoutTokenVerifier (options: LogoutTokenVerifierOptions): LogoutTokenVerifier {
  const algorithms = options.algorithms.filter((alg) => alg !== 'none' && !/^HS/i.test(alg))
  const now = options.now ?? Date.now
  const baseOptions: JWTVerifyOptions = {
    algorithms,
    issuer: options.issuer,
    clockTolerance: options.clockToleranceSeconds,
    maxTokenAge: options.maxAgeSeconds,
    requiredClaims: options.requireExp ? ['iat', 'jti', 'exp'] : ['iat', 'jti'],
    ...(options.audiences.length > 0 ? { audience: [...options.audiences] } : {})
  }

  return async (token) => {
    checkHeader(token, algorithms)
    let payload: JWTPayload
    try {
      payload = await verifySignatureAndClaims(token, options.keys, { ...baseOptions, currentDate: new Date(now()) })
    } catch (err) {
      throw asRejection(err)
    }
    return checkLogoutClaims(payload)
  }
}

/** §2.6 step 1 and the header rules, before any key is fetched. */
function checkHeader (token: string, algorithms: readonly string[]): void {
  if (token.length > MAX_TOKEN_LENGTH) throw tokenRejected('malformed', 'logout_token is too long')
  const parts = token.split('.').length
  if (parts === 5) throw tokenRejected('encrypted', 'encrypted logout tokens are not supported')
  if (parts !== 3) throw tokenRejected('malformed', 'logout_token is not a signed JWT')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw tokenRejected('malformed', 'logout_token header is not valid base64url JSON')
  }
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
    throw tokenRejected('alg', `logout_token alg must be one of ${algorithms.join(', ')}`)
  }
  if (header.typ !== undefined) {
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : ''
    if (!ACCEPTED_TYPES.has(typ)) throw tokenRejected('typ', 'logout_token typ must be absent, JWT or logout+jwt')
  }
}

async function verifySignatureAndClaims (token: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys, options)).payload
  } catch (err) {
    // No kid and several keys of the algorithm: try each (RFC 7515 §10.6 leaves the choice to us).
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner
      }
    }
    throw new errors.JWSSignatureVerificationFailed()
  }
}

const CLAIM_MESSAGES: Partial<Record<string, [TokenRejection, string]>> = {
  iss: ['iss', 'logout_token iss is not the configured issuer'],
  aud: ['aud', 'logout_token aud does not name an accepted client'],
  iat: ['iat', 'logout_token iat is missing, in the future, or older than the maximum age'],
  exp: ['exp', 'logout_token has expired or lacks exp'],
  nbf: ['nbf', 'logout_token is not valid yet (nbf)'],
  jti: ['jti', 'logout_token jti is missing']
}

/** Maps jose's errors to our reasons and our own words: jose's messages are never passed on. */
function asRejection (err: unknown): RelayError | unknown {
  if (isRelayError(err)) return err
  if (err instanceof errors.JWTClaimValidationFailed || err instanceof errors.JWTExpired) {
    const [reason, message] = CLAIM_MESSAGES[err.claim] ?? ['malformed', `logout_token claim ${err.claim} is invalid`]
    return tokenRejected(reason, message)
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSMultipleMatchingKeys) {
    return tokenRejected('signature', 'logout_token signature does not verify')
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return tokenRejected('unknown_kid', "logout_token kid is not among the issuer's signing keys")
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return tokenRejected('alg', 'logout_token alg is not allowed')
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return tokenRejected('malformed', 'logout_token is not a valid JWT')
  }
  return err
}

/** §2.4 and §2.6 steps 3–5: the claims that make a JWT a logout token. */
function checkLogoutClaims (payload: JWTPayload): LogoutClaims {
  const { iss, aud, iat, jti, exp, sid, sub } = payload
  const audiences = typeof aud === 'string' ? [aud] : aud
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.some((item) => typeof item !== 'string' || item === '')) {
    throw tokenRejected('aud', 'logout_token aud must be a client id or a list of them')
  }
  if (!isId(jti)) throw tokenRejected('jti', 'logout_token jti must be a non-empty string')
  const events = payload['events']
  if (!isPlainObject(events) || !isPlainObject(events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw tokenRejected('events', `logout_token events must hold the member ${BACKCHANNEL_LOGOUT_EVENT} as an object`)
  }
  if (sid === undefined && sub === undefined) throw tokenRejected('sid_sub', 'logout_token must carry sid or sub')
  if (sid !== undefined && !isId(sid)) throw tokenRejected('sid_sub', 'logout_token sid must be a non-empty string')
  if (sub !== undefined && !isId(sub)) throw tokenRejected('sid_sub', 'logout_token sub must be a non-empty string')
  if ('nonce' in payload) throw tokenRejected('nonce', 'logout_token must not carry a nonce')
  return {
    iss: iss as string,
    aud: audiences as string[],
    iat: iat as number,
    jti,
    ...(typeof exp === 'number' ? { exp } : {}),
    ...(sid !== undefined ? { sid } : {}),
    ...(sub !== undefined ? { sub } : {})
  }
}

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
