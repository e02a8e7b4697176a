import { randomUUID } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/token/logout-token.js'
import { OryDouble, type DoubleOptions, type NotFoundAnswer } from './ory-double.js'
import { parseTokenPagination, tokenPaginationHeaders } from './pagination.js'
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

/** An OAuth2 client as Hydra's admin API shows it (every member it has), with this id and any settings given. */
function clientObject (clientId: string, settings: Record<string, unknown> = {}): Record<string, unknown> {
  const [client] = recordedBody('list_clients') as Array<Record<string, unknown>>
  return { ...structuredClone(client), ...settings, client_id: clientId }
}

/** A consent session Hydra keeps: what its listing shows, and what decides whether it shows it. */
export interface ConsentRecord {
  subject: string
  /** The login session; '' once it ended (Hydra sets the flow's login_session_id to NULL). */
  sid: string
  clientId: string
  /** Hydra skipped the consent screen: a remembered consent covered the request (`consent_skip`). */
  skip: boolean
  remember: boolean
  /** Seconds; 0 = for ever. */
  rememberFor: number
  /** ms since the epoch. */
  requestedAt: number
}

/** A consent session as `GET /admin/oauth2/auth/sessions/consent` lists it (every member Hydra v2.3.0 sends). */
function consentSessionObject (consent: ConsentRecord, issuer: string): Record<string, unknown> {
  const [recorded] = recordedBody('list_consent_sessions') as Array<Record<string, unknown>>
  const session = structuredClone(recorded) as Record<string, unknown> & { consent_request: Record<string, unknown> }
  const challenge = randomUUID().replace(/-/g, '')
  return {
    ...session,
    remember: consent.remember,
    remember_for: consent.rememberFor,
    handled_at: new Date(consent.requestedAt).toISOString(),
    consent_request: {
      ...session.consent_request,
      challenge,
      skip: consent.skip,
      subject: consent.subject,
      client: clientObject(consent.clientId),
      request_url: `${issuer}oauth2/auth?client_id=${consent.clientId}&response_type=code&scope=openid+offline_access`,
      login_challenge: randomUUID().replace(/-/g, ''),
      login_session_id: consent.sid
    }
  }
}

/**
 * Hydra, as its OpenAPI document describes it: the public discovery document and JWKS (served from
 * real keys that sign real logout tokens the way Hydra does), and the admin login requests and
 * login/consent session revocation.
 */
export class HydraDouble extends OryDouble {
  readonly keys: SigningKey[]
  readonly loginRequests = new Map<string, LoginRequest>()
  /** The OAuth2 clients, by id: `example-client` to begin with. */
  readonly clients: Map<string, Record<string, unknown>>
  /** Every consent session, in the order they were given. */
  readonly consents: ConsentRecord[]
  /** Called when a login session is revoked by sid, as Hydra would then send back-channel logouts. */
  onRevokeLoginSession: ((sid: string) => Promise<void> | void) | undefined

  private constructor (keys: SigningKey[], options: Pick<DoubleOptions, 'token' | 'publicPort'>) {
    const clients = new Map([['example-client', clientObject('example-client')]])
    const consents: ConsentRecord[] = []
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
      listOAuth2Clients: ({ path, query }) => {
        // client.Handler.listOAuth2Clients: ordered by id, token pagination, every client counted.
        const { page, itemsPerPage } = parseTokenPagination(query)
        const all = [...clients.values()].sort((a, b) => String(a['client_id']).localeCompare(String(b['client_id'])))
        return {
          status: 200,
          headers: tokenPaginationHeaders(path, query, all.length, page, itemsPerPage),
          body: all.slice(page * itemsPerPage, (page + 1) * itemsPerPage)
        }
      },
      patchOAuth2Client: ({ params, body }) => {
        // A JSON Patch (RFC 6902) of top-level members, as the README's fix and doctor's give it.
        const client = clients.get(params['id'] ?? '')
        if (client === undefined) return { status: 404, body: { error: 'Unable to locate the resource', error_description: '' } }
        const operations = JSON.parse(body) as Array<{ op: string, path: string, value?: unknown }>
        for (const { op, path, value } of operations) {
          const member = path.replace(/^\//, '')
          if ((op === 'add' || op === 'replace') && !member.includes('/')) client[member] = value
          else return { status: 400, body: { error: 'invalid_request', error_description: `the double patches top-level members only: ${op} ${path}` } }
        }
        return { status: 200, body: client }
      },
      listOAuth2ConsentSessions: ({ path, query }) => {
        const subject = query.get('subject') ?? ''
        if (subject === '') {
          return { status: 400, body: { error: 'invalid_request', error_description: "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. Query parameter 'subject' is not defined but should have been." } }
        }
        const sid = query.get('login_session_id') ?? ''
        const { page, itemsPerPage } = parseTokenPagination(query)
        // FindSubjectsGrantedConsentRequests: the subject's consents that were asked (consent_skip=FALSE),
        // newest first, one page of them; then those whose remember_for has passed are dropped.
        const granted = consents.filter((consent) => consent.subject === subject && !consent.skip)
        const rows = granted.filter((consent) => sid === '' || consent.sid === sid).sort((a, b) => b.requestedAt - a.requestedAt)
        const now = Date.now()
        const listed = rows.slice(page * itemsPerPage, (page + 1) * itemsPerPage)
          .filter((consent) => !(consent.rememberFor > 0 && consent.requestedAt + consent.rememberFor * 1000 < now))
        // Nothing to list: an empty list, without the pagination headers.
        if (listed.length === 0) return { status: 200, body: [] }
        // Hydra v2.3.0 passes the page size as the page, and the offset as the page size
        // (consent/handler.go): the Link header it sends, recorded in list_consent_sessions_first_page.
        return {
          status: 200,
          headers: tokenPaginationHeaders(path, query, granted.length, itemsPerPage, itemsPerPage * page),
          body: listed.map((consent) => consentSessionObject(consent, state.issuer))
        }
      },
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
    this.clients = clients
    this.consents = consents
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

  /** Registers a client (or replaces one), with any settings as Hydra's admin API names them. */
  addClient (clientId: string, settings: Record<string, unknown> = {}): void {
    this.clients.set(clientId, clientObject(clientId, settings))
  }

  /** A consent session Hydra keeps; asked (not skipped), remembered for ever and just now unless said otherwise. */
  addConsent (consent: Partial<ConsentRecord> & { subject: string, sid: string }): ConsentRecord {
    const full: ConsentRecord = { clientId: 'example-client', skip: false, remember: true, rememberFor: 0, requestedAt: Date.now() + this.consents.length, ...consent }
    this.consents.push(full)
    return full
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
