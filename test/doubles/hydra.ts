import { randomUUID } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/token/logout-token.js'
import { OryDouble, type OryDoubleOptions } from './ory-double.js'

export interface SigningKey {
  kid: string
  alg: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function createSigningKey (alg = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = randomUUID()
  return { kid, alg, privateKey, publicJwk: { ...await exportJWK(publicKey), kid, alg, use: 'sig' } }
}

export interface LoginRequest {
  challenge: string
  sessionId: string
  subject: string
  clientId: string
  /** Hydra answers 410 once a login request was handled. */
  handled?: boolean
}

/**
 * Hydra, as its OpenAPI document describes it: the public discovery document and JWKS (served from
 * real keys that sign real logout tokens the way Hydra does), and the admin login requests and
 * login/consent session revocation.
 */
export class HydraDouble extends OryDouble {
  readonly keys: SigningKey[]
  readonly loginRequests = new Map<string, LoginRequest>()
  /** The OAuth2 clients `GET /admin/clients` lists, as Hydra's admin API shows them. */
  readonly clients: Array<Record<string, unknown>>
  /** Called when a login session is revoked by sid, as Hydra would then send back-channel logouts. */
  onRevokeLoginSession: ((sid: string) => Promise<void> | void) | undefined

  private constructor (keys: SigningKey[], options: OryDoubleOptions) {
    const state = { keys, issuer: '' }
    const loginRequests = new Map<string, LoginRequest>()
    const clients: Array<Record<string, unknown>> = []
    super('hydra/api.json', {
      discoverOidcConfiguration: () => ({
        status: 200,
        body: {
          issuer: state.issuer,
          authorization_endpoint: `${state.issuer}oauth2/auth`,
          token_endpoint: `${state.issuer}oauth2/token`,
          jwks_uri: `${state.issuer}.well-known/jwks.json`,
          subject_types_supported: ['public'],
          response_types_supported: ['code'],
          id_token_signing_alg_values_supported: ['RS256'],
          backchannel_logout_supported: true,
          backchannel_logout_session_supported: true
        }
      }),
      discoverJsonWebKeys: () => ({ status: 200, body: { keys: state.keys.map((key) => key.publicJwk) } }),
      getOAuth2LoginRequest: ({ query }) => {
        const request = loginRequests.get(query.get('login_challenge') ?? '')
        if (request === undefined) return { status: 404, body: { error: 'Not Found', error_description: 'Unable to locate the requested resource', status_code: 404 } }
        if (request.handled === true) return { status: 410, body: { redirect_to: `${state.issuer}oauth2/auth?login_verifier=x` } }
        return {
          status: 200,
          body: {
            challenge: request.challenge,
            skip: false,
            subject: request.subject,
            client: { client_id: request.clientId },
            request_url: `${state.issuer}oauth2/auth?client_id=${request.clientId}`,
            requested_scope: ['openid'],
            requested_access_token_audience: [],
            session_id: request.sessionId
          }
        }
      },
      revokeOAuth2LoginSessions: async ({ query }) => {
        const sid = query.get('sid')
        if (sid !== null) await this.onRevokeLoginSession?.(sid)
        return { status: 204 }
      },
      revokeOAuth2ConsentSessions: () => ({ status: 204 }),
      listOAuth2Clients: () => ({ status: 200, body: clients.map((client) => ({ ...client })) }),
      isAlive: () => ({ status: 200, body: { status: 'ok' } }),
      isReady: () => ({ status: 200, body: { status: 'ok' } })
    }, options)
    this.keys = keys
    this.loginRequests = loginRequests
    this.clients = clients
    this.#state = state
  }

  readonly #state: { keys: SigningKey[], issuer: string }

  static async start (options: OryDoubleOptions = {}): Promise<HydraDouble> {
    const hydra = new HydraDouble([await createSigningKey()], options)
    await hydra.listen()
    hydra.#state.issuer = `${hydra.url}/`
    return hydra
  }

  /** `urls.self.issuer`, with Hydra's trailing slash. */
  get issuer (): string {
    return this.#state.issuer
  }

  get jwksUrl (): string {
    return `${this.url}/.well-known/jwks.json`
  }

  /** Rotates the signing key: the new one signs, the old one stays published (as Hydra does). */
  async rotateKey (next?: SigningKey): Promise<SigningKey> {
    const key = next ?? await createSigningKey()
    this.#state.keys.unshift(key)
    return key
  }

  /** A login challenge whose login session is `sessionId`. */
  addLoginRequest (request: Partial<LoginRequest> & { sessionId: string }): LoginRequest {
    const full: LoginRequest = { challenge: randomUUID().replace(/-/g, ''), subject: '', clientId: 'example-client', ...request }
    this.loginRequests.set(full.challenge, full)
    return full
  }

  /**
   * A logout token exactly as Hydra signs it: header `alg RS256, kid, typ JWT`; claims `iss, aud
   * [client], iat, jti, sid, events` — no `sub`, no `exp`. Overrides add or replace claims (undefined
   * removes one) and header members.
   */
  async logoutToken (sid: string, options: { clientId?: string, claims?: Record<string, unknown>, header?: Record<string, unknown>, key?: SigningKey } = {}): Promise<string> {
    const key = options.key ?? this.keys[0] as SigningKey
    const claims: Record<string, unknown> = {
      iss: this.issuer,
      aud: [options.clientId ?? 'example-client'],
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      sid,
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      ...options.claims
    }
    for (const [name, value] of Object.entries(claims)) if (value === undefined) Reflect.deleteProperty(claims, name)
    const header = { alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header }
    for (const [name, value] of Object.entries(header)) if (value === undefined) Reflect.deleteProperty(header, name)
    return await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey)
  }
}
