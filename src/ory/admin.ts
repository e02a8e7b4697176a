import { createRequire } from 'node:module'
import type * as OryClient from '@ory/client'
import type { Dispatcher } from 'undici'
import {
  UpstreamError, createAdminHttp, refusedAnswer,
  type AdminAnswer, type AdminHttpOptions, type OryService
} from './admin-http.js'
import { isUuid } from '../uuid.js'
import { isOryNotFound } from './admin-proof.js'

export { UpstreamError, type AdminAnswer, type OryService }

// @ory/client is CommonJS with a 1.2 MB generated api.js: loaded through require, it costs ~15 MB
// less resident memory than through an ESM import (which makes Node scan the whole file for exports).
const { Configuration, IdentityApiAxiosParamCreator, OAuth2ApiAxiosParamCreator } =
  createRequire(import.meta.url)('@ory/client') as typeof OryClient

/** A request as @ory/client's request builders (`…ApiAxiosParamCreator`) describe it. */
export interface OryRequest {
  /** Path and query, relative to the API's base URL. */
  url: string
  options: {
    readonly method?: string
    readonly headers?: Readonly<Record<string, unknown>>
    readonly data?: unknown
  }
}

export type AdminClientOptions = AdminHttpOptions

/**
 * One admin API: @ory/client builds each request (path, method, credentials) as the description of
 * Ory's API, and undici sends it (see admin-http.ts). Returns any answer; no answer is a transient
 * error.
 */
function adminApi (service: OryService, options: AdminClientOptions) {
  const configuration = new Configuration({
    basePath: options.adminUrl.replace(/\/+$/, ''),
    ...(options.token !== undefined ? { accessToken: options.token } : {})
  })
  const http = createAdminHttp(service, options)
  return {
    configuration,
    http,
    async call (operation: string, build: () => Promise<OryRequest>): Promise<AdminAnswer> {
      let built: OryRequest
      try {
        built = await build()
      } catch (err) {
        throw new UpstreamError(service, false, undefined, `${service} ${operation}: the request cannot be built`, { cause: err })
      }
      const { url, options: request } = built
      return await http.send({
        method: (request.method ?? 'GET') as Dispatcher.HttpMethod,
        path: url,
        headers: headerFields(request.headers),
        ...(request.data !== undefined ? { body: typeof request.data === 'string' ? request.data : JSON.stringify(request.data) } : {})
      }, operation)
    },
    /** An answer the caller cannot use, as an error. */
    refused: (operation: string, status: number): UpstreamError => refusedAnswer(service, operation, status),
    /** A 404 that is no answer of the admin API's operation: the route is not there (a wrong URL). */
    misrouted: (operation: string, answer: AdminAnswer): UpstreamError =>
      new UpstreamError(service, false, answer.status, `${service} ${operation}: HTTP 404 from something that is not ${service}'s admin API (${String(answer.headers['content-type'] ?? 'no content type')})`, { misrouted: true })
  }
}

const headersOf = new WeakMap<object, Record<string, string>>()

/**
 * A builder's header fields as undici takes them, with `Accept: application/json`; converted once per
 * header object, which a {@link uuidPathTemplate} shares between its calls.
 */
function headerFields (headers: OryRequest['options']['headers']): Record<string, string> {
  if (headers === undefined) return { accept: 'application/json' }
  let fields = headersOf.get(headers)
  if (fields === undefined) {
    fields = { accept: 'application/json' }
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) fields[name.toLowerCase()] = String(value)
    }
    if (Object.isFrozen(headers)) headersOf.set(headers, Object.freeze(fields))
  }
  return fields
}

const STAND_IN_UUID = '00000000-0000-4000-8000-000000000000'

/**
 * A request builder for an operation with one UUID in its path, memoised: @ory/client builds the
 * request once, for a stand-in UUID, and each call puts its own UUID where the stand-in was. That is
 * the builder's own request, since URL encoding leaves a UUID as it is, without the builder's cost (a
 * URL parse, awaiting the credentials, four object copies): on the relay's hottest call, one per
 * revocation, that cost was a sixth of the drain's CPU. Any other value goes through the builder.
 */
export function uuidPathTemplate (build: (value: string) => Promise<OryRequest>): (value: string) => Promise<OryRequest> {
  let template: Promise<{ before: string, after: string, options: OryRequest['options'] } | null> | undefined
  return async (value) => {
    if (!isUuid(value)) return await build(value)
    template ??= build(STAND_IN_UUID).then(({ url, options }) => {
      const [before, after, ...more] = url.split(STAND_IN_UUID)
      if (before === undefined || after === undefined || more.length > 0) return null
      Object.freeze(options.headers)
      return { before, after, options: Object.freeze(options) }
    }, () => null)
    const shape = await template
    return shape === null ? await build(value) : { url: shape.before + value + shape.after, options: shape.options }
  }
}

/** What a revocation got from Ory: 204, or 404 when there was nothing left to revoke; both are done. */
export interface Revoked {
  status: 204 | 404
}

/** What both admin clients have. */
export interface AdminClient {
  /**
   * `GET <admin URL><pathAndQuery>` with the admin token, on the client's connections, deadline and
   * limits: any answer, its status unjudged; no answer is a transient {@link UpstreamError}. For the
   * calls that have no method of their own, e.g. `get('/admin/identities?page_size=1')`.
   */
  get: (pathAndQuery: string) => Promise<AdminAnswer>
  /** Closes the connections: idle ones at once, those in flight once answered. */
  close: () => Promise<void>
}

/** The Kratos admin calls the relay makes. */
export interface KratosAdmin extends AdminClient {
  /**
   * Revokes every session of the identity. Kratos answers 204, or 404 with its JSON error when the
   * identity has no session left (or is gone): both mean there is nothing left to revoke. Any other
   * 404 (a router's "404 page not found") means the route is not there: a misrouted error.
   */
  revokeIdentitySessions: (identityId: string) => Promise<Revoked>
}

export function createKratosAdmin (options: AdminClientOptions): KratosAdmin {
  const api = adminApi('kratos', options)
  const identities = IdentityApiAxiosParamCreator(api.configuration)
  const deleteIdentitySessions = uuidPathTemplate(async (id) => await identities.deleteIdentitySessions(id))
  const operation = 'DELETE /admin/identities/{id}/sessions'
  return {
    async revokeIdentitySessions (identityId) {
      const answer = await api.call(operation, async () => await deleteIdentitySessions(identityId))
      const { status } = answer
      if (status === 404 && !isOryNotFound({ status, contentType: answer.headers['content-type'], body: answer.body })) throw api.misrouted(operation, answer)
      if (status !== 204 && status !== 404) throw api.refused(operation, status)
      return { status }
    },
    get: api.http.get,
    close: api.http.close
  }
}

/** The Hydra admin calls the relay makes. */
export interface HydraAdmin extends AdminClient {
  /** The login session id (`sid`) of a login challenge, or null when Hydra does not know it (404/410). */
  loginSessionId: (loginChallenge: string) => Promise<string | null>
  /**
   * Revokes one login session; Hydra then sends back-channel logout to every client of it. Hydra
   * answers 204, also for a sid it does not know: a 404 means the route is not there (misrouted).
   */
  revokeLoginSession: (sid: string) => Promise<Revoked>
  /** Revokes every consent session of the subject, and the tokens issued under them; 204, as above. */
  revokeConsentSessions: (subject: string) => Promise<Revoked>
}

export function createHydraAdmin (options: AdminClientOptions): HydraAdmin {
  const api = adminApi('hydra', options)
  const oauth2 = OAuth2ApiAxiosParamCreator(api.configuration)
  return {
    async loginSessionId (loginChallenge) {
      const operation = 'GET /admin/oauth2/auth/requests/login'
      const { status, body } = await api.call(operation, async () => await oauth2.getOAuth2LoginRequest(loginChallenge))
      if (status === 404 || status === 410) return null
      if (status !== 200) throw api.refused(operation, status)
      let sessionId: unknown
      try {
        sessionId = (JSON.parse(body) as { session_id?: unknown }).session_id
      } catch {}
      if (typeof sessionId !== 'string' || sessionId === '') {
        throw new UpstreamError('hydra', false, 200, `hydra ${operation}: no session_id in the answer`)
      }
      return sessionId
    },
    async revokeLoginSession (sid) {
      const operation = 'DELETE /admin/oauth2/auth/sessions/login'
      const answer = await api.call(operation, async () => await oauth2.revokeOAuth2LoginSessions(undefined, sid))
      if (answer.status === 404) throw api.misrouted(operation, answer)
      if (answer.status !== 204) throw api.refused(operation, answer.status)
      return { status: 204 }
    },
    async revokeConsentSessions (subject) {
      const operation = 'DELETE /admin/oauth2/auth/sessions/consent'
      const answer = await api.call(operation, async () => await oauth2.revokeOAuth2ConsentSessions(subject, undefined, undefined, true))
      if (answer.status === 404) throw api.misrouted(operation, answer)
      if (answer.status !== 204) throw api.refused(operation, answer.status)
      return { status: 204 }
    },
    get: api.http.get,
    close: api.http.close
  }
}
