import { errors, type CompactJWSHeaderParameters, type JWTVerifyGetKey } from 'jose'
import { isRelayError, tokenRejected } from '../errors.js'
import { isJwsAlgorithm } from './algorithms.js'
import { keyObjectOf, verifyJwsSignature } from './jws.js'

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
  /** Allowed `alg` values; any not in the algorithm table (`none`, HS*) is dropped whatever is passed. */
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
 * signs it (RS256, `typ: JWT`, no `sub`, no `exp`): the JWS (RFC 7515) against the issuer's keys as
 * jose's key sets select them, verified by Node's crypto; then the ID Token rules of OIDC Core §3.1.3.7
 * that §2.6 names (iss, aud, iat, exp), then the logout token's own. Every failure is a `RelayError`
 * with a {@link TokenRejection} reason; only keys that cannot be loaded are `ERR_JWKS_UNAVAILABLE`.
 */
export function createLogoutTokenVerifier (options: LogoutTokenVerifierOptions): LogoutTokenVerifier {
  // Only the table's asymmetric algorithms, whatever is passed: never `none` or HS*.
  const algorithms = options.algorithms.filter(isJwsAlgorithm)
  const now = options.now ?? Date.now
  const audiences = new Set(options.audiences)

  return async (token) => {
    const jws = parseCompactJws(token, algorithms)
    await verifySignature(jws, options.keys)
    const payload = decodeJsonObject(jws.payload, 'claims set')
    checkIdTokenRules(payload, {
      issuer: options.issuer,
      audiences,
      now: Math.floor(now() / 1000),
      tolerance: options.clockToleranceSeconds,
      maxAge: options.maxAgeSeconds,
      requireExp: options.requireExp
    })
    return checkLogoutClaims(payload)
  }
}

interface CompactJws {
  header: CompactJWSHeaderParameters
  /** The three segments, as received. */
  protected: string
  payload: string
  signature: string
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

/** RFC 7515 §5.2 steps 1–4 and the header rules, before any key is looked up. */
function parseCompactJws (token: string, algorithms: readonly string[]): CompactJws {
  if (token.length > MAX_TOKEN_LENGTH) throw tokenRejected('malformed', 'logout_token is too long')
  const parts = token.split('.')
  if (parts.length === 5) throw tokenRejected('encrypted', 'encrypted logout tokens are not supported')
  const [protectedHeader = '', payload = '', signature = ''] = parts
  if (parts.length !== 3) throw tokenRejected('malformed', 'logout_token is not a signed JWT')
  if (!BASE64URL.test(protectedHeader)) throw tokenRejected('malformed', 'logout_token header is not base64url')
  const header = decodeJsonObject(protectedHeader, 'header')
  if (typeof header['alg'] !== 'string' || !algorithms.includes(header['alg'])) {
    throw tokenRejected('alg', `logout_token alg must be one of ${algorithms.join(', ')}`)
  }
  // No header extension is understood here: any critical one must be refused (RFC 7515 §4.1.11), and
  // an unencoded payload (RFC 7797 "b64") is no JWT (RFC 7519 §7.2).
  if (!BASE64URL.test(payload) || !BASE64URL.test(signature)) throw tokenRejected('malformed', 'logout_token is not base64url')
  if ('crit' in header || 'b64' in header) throw tokenRejected('malformed', 'logout_token uses a header extension (crit, b64) that is not supported')
  if (header['typ'] !== undefined) {
    const typ = typeof header['typ'] === 'string' ? header['typ'].toLowerCase().replace(/^application\//, '') : ''
    if (!ACCEPTED_TYPES.has(typ)) throw tokenRejected('typ', 'logout_token typ must be absent, JWT or logout+jwt')
  }
  return { header: header as unknown as CompactJWSHeaderParameters, protected: protectedHeader, payload, signature }
}

/**
 * Finds the issuer's key for the header (jose's key set: by kid, alg and key type, refetched on an
 * unknown kid) and verifies the signature with it. With no kid and several keys that fit, each is
 * tried (RFC 7515 §10.6 leaves the choice to the verifier).
 */
async function verifySignature (jws: CompactJws, keys: JWTVerifyGetKey): Promise<void> {
  const alg = jws.header.alg
  const signingInput = `${jws.protected}.${jws.payload}`
  let candidates: unknown[]
  try {
    candidates = [await keys(jws.header, { protected: jws.protected, payload: jws.payload, signature: jws.signature })]
  } catch (err) {
    if (isRelayError(err)) throw err
    if (err instanceof errors.JWKSNoMatchingKey) throw tokenRejected('unknown_kid', "logout_token kid is not among the issuer's signing keys")
    if (err instanceof errors.JOSENotSupported) throw tokenRejected('alg', 'logout_token alg is not allowed')
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err
    candidates = []
    for await (const key of err) candidates.push(key)
  }
  for (const candidate of candidates) {
    const key = keyObjectOf(candidate)
    if (key !== undefined && verifyJwsSignature(signingInput, jws.signature, alg, key)) return
  }
  throw tokenRejected('signature', 'logout_token signature does not verify')
}

/** A base64url segment holding a JSON object (RFC 7519 §7.2 steps 3–4, 10). */
function decodeJsonObject (segment: string, what: 'header' | 'claims set'): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    throw tokenRejected('malformed', `logout_token ${what} is not JSON`)
  }
  if (!isPlainObject(value)) throw tokenRejected('malformed', `logout_token ${what} must be a JSON object`)
  return value
}

interface IdTokenRules {
  issuer: string
  audiences: ReadonlySet<string>
  /** Seconds since the epoch. */
  now: number
  tolerance: number
  maxAge: number
  requireExp: boolean
}

function isNumericDate (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * The rules of OIDC Core §3.1.3.7 that OIDC BCL §2.6 step 2 applies to logout tokens: `iss` exact,
 * `aud` naming an accepted client, `iat` present and neither ahead of the clock nor older than the
 * maximum age, `exp` (and `nbf`) respected when present, `exp` required in strict mode.
 */
function checkIdTokenRules (payload: Record<string, unknown>, rules: IdTokenRules): void {
  if (payload['iss'] !== rules.issuer) throw tokenRejected('iss', 'logout_token iss is not the configured issuer')
  const aud = payload['aud']
  if (rules.audiences.size > 0) {
    const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
    if (!named.some((item) => typeof item === 'string' && rules.audiences.has(item))) {
      throw tokenRejected('aud', 'logout_token aud does not name an accepted client')
    }
  }
  const { iat, exp, nbf } = payload
  if (!isNumericDate(iat) || iat > rules.now + rules.tolerance || rules.now - iat - rules.tolerance > rules.maxAge) {
    throw tokenRejected('iat', 'logout_token iat is missing, in the future, or older than the maximum age')
  }
  if (exp === undefined ? rules.requireExp : !isNumericDate(exp) || exp <= rules.now - rules.tolerance) {
    throw tokenRejected('exp', 'logout_token has expired or lacks exp')
  }
  if (nbf !== undefined && (!isNumericDate(nbf) || nbf > rules.now + rules.tolerance)) {
    throw tokenRejected('nbf', 'logout_token is not valid yet (nbf)')
  }
}

/** §2.4 and §2.6 steps 3–5: the claims that make a JWT a logout token. */
function checkLogoutClaims (payload: Record<string, unknown>): LogoutClaims {
  const { iss, aud, iat, jti, exp, sid, sub } = payload as { iss: string, aud: unknown, iat: number, jti: unknown, exp: unknown, sid: unknown, sub: unknown }
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
