/**
 * The error registry: every error the relay answers with, its HTTP status, and the OAuth-style
 * `error` value its body carries. Code branches on `code`, never on a message.
 */
export const ERRORS = {
  /** The request is malformed (RFC 6749 §5.2 `invalid_request`, as OIDC BCL §2.8 asks for logout). */
  ERR_REQUEST_INVALID: { status: 400, error: 'invalid_request' },
  /** The body is larger than the route accepts. */
  ERR_BODY_TOO_LARGE: { status: 413, error: 'invalid_request' },
  /** The body is not of the content type the route accepts. */
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, error: 'invalid_request' },
  /** The route exists, but not for this method. */
  ERR_METHOD_NOT_ALLOWED: { status: 405, error: 'invalid_request' },
  /** No such route. */
  ERR_NOT_FOUND: { status: 404, error: 'not_found' },
  /** No dead letter has the id: retried or dropped already, removed by its retention, or never one. */
  ERR_DEAD_LETTER_NOT_FOUND: { status: 404, error: 'not_found' },
  /** The logout token failed a validation rule of OIDC BCL §2.6. */
  ERR_LOGOUT_TOKEN_INVALID: { status: 400, error: 'invalid_request' },
  /** The logout token's `jti` was already accepted (OIDC BCL §2.6 step 6). */
  ERR_LOGOUT_TOKEN_REPLAYED: { status: 400, error: 'invalid_request' },
  /** The issuer's signing keys cannot be loaded, so no token can be judged. */
  ERR_JWKS_UNAVAILABLE: { status: 503, error: 'temporarily_unavailable' },
  /** Redis (or whichever store) cannot record anything durably. */
  ERR_STORE_UNAVAILABLE: { status: 503, error: 'temporarily_unavailable' },
  /** The login hook's body does not say who logged in to which session. */
  ERR_HOOK_BODY_INVALID: { status: 400, error: 'invalid_request' },
  /** Missing or wrong API key on an authenticated route. */
  ERR_UNAUTHORIZED: { status: 401, error: 'unauthorized' },
  /** A route whose API keys are not configured refuses every call. */
  ERR_NOT_CONFIGURED: { status: 503, error: 'not_configured' },
  /**
   * The login hook names a live sid that is mapped to another identity: a sid is never remapped
   * (Hydra itself refuses a subject change on a remembered login session).
   */
  ERR_SID_CONFLICT: { status: 409, error: 'conflict' },
  /** Hydra does not know the login challenge (404 or 410). */
  ERR_LOGIN_CHALLENGE_UNKNOWN: { status: 400, error: 'invalid_request' },
  /** Hydra's admin API cannot be reached or refuses the relay. */
  ERR_HYDRA_UNAVAILABLE: { status: 503, error: 'temporarily_unavailable' },
  /** A request the admin API cannot act on. */
  ERR_ADMIN_REQUEST_INVALID: { status: 400, error: 'invalid_request' },
  /** A client or key is over its rate limit. */
  ERR_TOO_MANY_REQUESTS: { status: 429, error: 'rate_limited' },
  /** The process is shedding load. */
  ERR_OVERLOADED: { status: 503, error: 'temporarily_unavailable' },
  /** Anything unforeseen; its message is never shown to the client. */
  ERR_INTERNAL: { status: 500, error: 'server_error' }
} as const satisfies Record<string, { status: number, error: string }>

export type ErrorCode = keyof typeof ERRORS

/**
 * Why a logout token was refused: the label of the rejection metric and the `reason` of the error.
 * Each maps to one rule of OIDC Back-Channel Logout 1.0 §2.4/§2.6 (errata 1).
 */
export type TokenRejection =
  | 'malformed' | 'encrypted' | 'alg' | 'typ' | 'unknown_kid' | 'signature'
  | 'iss' | 'aud' | 'iat' | 'exp' | 'nbf' | 'jti' | 'events' | 'sid_sub' | 'nonce' | 'replay'

export interface RelayErrorOptions {
  cause?: unknown
  /** For token rejections: which rule failed. */
  reason?: TokenRejection
  /** For body errors: which field is wrong. */
  field?: string
  /** Seconds a client should wait before retrying a 503. */
  retryAfter?: number
}

/**
 * An error with a stable code and an HTTP status. Its message is always the relay's own fixed text
 * (never an upstream's or a library's), so it may be shown, except for the catch-all internal error.
 */
export class RelayError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly error: string
  readonly expose: boolean
  readonly reason: TokenRejection | undefined
  readonly field: string | undefined
  readonly retryAfter: number | undefined

  constructor (code: ErrorCode, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RelayError'
    this.code = code
    this.status = ERRORS[code].status
    this.error = ERRORS[code].error
    this.expose = code !== 'ERR_INTERNAL'
    this.reason = options.reason
    this.field = options.field
    this.retryAfter = options.retryAfter ?? (this.status === 503 || this.status === 429 ? 5 : undefined)
  }
}

export function isRelayError (err: unknown): err is RelayError {
  return err instanceof RelayError
}

/** A token validation failure: always a 400 with the rule that failed. */
export function tokenRejected (reason: TokenRejection, message: string): RelayError {
  return new RelayError(reason === 'replay' ? 'ERR_LOGOUT_TOKEN_REPLAYED' : 'ERR_LOGOUT_TOKEN_INVALID', message, { reason })
}

/** Wraps a store failure; the cause is logged, never sent. */
export function storeUnavailable (cause: unknown): RelayError {
  return new RelayError('ERR_STORE_UNAVAILABLE', 'the relay cannot record the request durably right now', { cause })
}
