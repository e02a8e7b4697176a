import { randomUUID } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/token/logout-token.js'
import { OryDouble, type DoubleOptions, type NotFoundAnswer } from './ory-double.js'
import { loadRecorded } from './recorded.js'

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
  /**
   * Answer 410 Gone, as Hydra's OpenAPI document says it does for a handled login request. Hydra
   * v2.3.0 did not, for a challenge whose flow was completed: its challenge carries the flow's first
   * state, and it answered 200 with the request as it was (test/fixtures/ory-recorded/hydra.json,
   * login_request_handled).
   */
  handled?: boolean
}

/** What Hydra v2.3.0 answered, recorded: its discovery document and an OAuth2 client as the admin API shows one. */
const recorded = loadRecorded('hydra').exchanges
const RECORDED_ISSUER = 'http://127.0.0.1:4444/'

function recordedBody (exchange: string): unknown {
  const body = recorded[exchange]?.response?.body
  if (body === undefined) throw new Error(`test/fixtures/ory-recorded/hydra.json has no ${exchange}`)
  return body
}

/** Hydra's discovery document as recorded, with this issuer's URLs in it. */
function discoveryDocument (issuer: string): unknown {
  return JSON.parse(JSON.stringify(recordedBody('discovery')).split(RECORDED_ISSUER).join(issuer))
}

/**
 * What Hydra's admin router answers for a path under /admin it does not serve: a 404 negotiated by
 * the Accept header (ory/x serverx.DefaultNotFoundHandler: JSON, plain text or HTML). Its public
 * router answers as Go's http.NotFound does (the double's default).
 */
function hydraNotFound (path: string, accept: string | undefined): NotFoundAnswer | undefined {
  if (!path.startsWith('/admin/')) return undefined
  const reason = 'The requested route does not exist. Make sure you are using the right path, domain, and port.'
  const wanted = (accept ?? '').toLowerCase()
  const prefers = (type: string): number => wanted.indexOf(type) === -1 ? Infinity : wanted.indexOf(type)
  const [json, text, html] = [prefers('application/json'), prefers('text/plain'), prefers('text/html')]
  if (json < Infinity && json < text && json < html) {
    return { contentType: 'application/json; charset=utf-8', body: JSON.stringify({ error: { code: 404, message: 'Not Found', reason } }, null, 2) }
  }
  if (text < Infinity && text < html) return { contentType: 'text/plain; charset=utf-8', body: `Error 404 - ${reason}` }
  return { contentType: 'text/html; charset=utf-8', body: '<!DOCTYPE html><html lang="en"><head><title>404 - Route not found</title></head><body></body></html>' }
}

/** An OAuth2 client as Hydra's admin API shows it (every member it has), with this id. */
function clientObject (clientId: string): Record<string, unknown> {
  const [client] = recordedBody('list_clients') as Array<Record<string, unknown>>
  return { ...structuredClone(client), client_id: clientId }
}

/**
 * Hydra, as its OpenAPI document describes it: the public discovery document and JWKS (served from
 * real keys that sign real logout tokens the way Hydra does), and the admin login requests and
 * login/consent session revocation.
 */
export class HydraDouble extends OryDouble {
  readonly keys: SigningKey[]
  readonly loginRequests = new Map<string, LoginRequest>()
  /** Called when a login session is revoked by sid, as Hydra would then send back-channel logouts. */
  onRevokeLoginSession: ((sid: string) => Promise<void> | void) | undefined

  private constructor (keys: SigningKey[], options: Pick<DoubleOptions, 'token' | 'publicPort'>) {
    const clients = [clientObject('example-client')]
    const state = { keys, issuer: '' }
    const loginRequests = new Map<string, LoginRequest>()
    super('hydra/api.json', {
      discoverOidcConfiguration: () => ({ status: 200, body: discoveryDocument(state.issuer) }),
      discoverJsonWebKeys: () => ({ status: 200, body: { keys: state.keys.map((key) => key.publicJwk) } }),
      getOAuth2LoginRequest: ({ query }) => {
        const request = loginRequests.get(query.get('login_challenge') ?? '')
        if (request === undefined) return { status: 404, body: { error: 'Not Found', error_description: 'Unable to locate the requested resource' } }
        const requestUrl = `${state.issuer}oauth2/auth?client_id=${request.clientId}&response_type=code&scope=openid&state=${request.challenge.slice(0, 16)}`
        if (request.handled === true) return { status: 410, body: { redirect_to: requestUrl } }
        return {
          status: 200,
          body: {
            challenge: request.challenge,
            requested_scope: ['openid'],
            requested_access_token_audience: [],
            skip: false,
            subject: request.subject,
            oidc_context: {},
            client: clientObject(request.clientId),
            request_url: requestUrl,
            session_id: request.sessionId
          }
        }
      },
      listOAuth2Clients: () => ({
        status: 200,
        headers: { link: '</admin/clients?page_size=1&page_token=eyJvZmZzZXQiOiIwIiwidiI6Mn0>; rel="first"', 'x-total-count': String(clients.length) },
        body: clients
      }),
      revokeOAuth2LoginSessions: async ({ query }) => {
        const sid = query.get('sid')
        if (sid !== null) await this.onRevokeLoginSession?.(sid)
        return { status: 204 }
      },
      revokeOAuth2ConsentSessions: () => ({ status: 204 }),
      isAlive: () => ({ status: 200, body: { status: 'ok' } }),
      isReady: () => ({ status: 200, body: { status: 'ok' } })
    }, { ...options, cacheable: ['isAlive', 'isReady'], notFound: hydraNotFound })
    this.keys = keys
    this.loginRequests = loginRequests
    this.#state = state
  }

  readonly #state: { keys: SigningKey[], issuer: string }

  static async start (options: Pick<DoubleOptions, 'token' | 'publicPort'> = {}): Promise<HydraDouble> {
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
