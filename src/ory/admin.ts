import { createRequire } from 'node:module'
import type * as OryClient from '@ory/client'
import { TransportError, createOryTransport, type OryRequest, type OryResponse } from './http.js'
import { isUuid } from '../uuid.js'

// @ory/client is CommonJS with a 1.2 MB generated api.js: loaded through require, it costs ~15 MB
// less resident memory than through an ESM import (which makes Node scan the whole file for exports).
const { Configuration, IdentityApiAxiosParamCreator, OAuth2ApiAxiosParamCreator } =
  createRequire(import.meta.url)('@ory/client') as typeof OryClient

export type OryService = 'kratos' | 'hydra'

/**
 * A failed call to an Ory admin API, in our words only: never the request (its headers carry the
 * admin token). `transient` covers what retrying can cure by itself (no answer, a timeout, 5xx, 429);
 * any other answer means a misconfiguration.
 */
export class UpstreamError extends Error {
  readonly code = 'ERR_UPSTREAM'
  constructor (
    readonly service: OryService,
    readonly transient: boolean,
    readonly status: number | undefined,
    message: string
  ) {
    super(message)
    this.name = 'UpstreamError'
  }
}

export interface AdminClientOptions {
  adminUrl: string
  /** Sent as `Authorization: Bearer` (Ory Network API keys). */
  token?: string | undefined
  timeoutMs: number
}

/**
 * One admin API: @ory/client builds each request (path, method, credentials), and the relay's
 * transport sends it. Returns the status and body of any answer; no answer is a transient error.
 */
function adminApi (service: OryService, options: AdminClientOptions) {
  const configuration = new Configuration({
    basePath: options.adminUrl.replace(/\/+$/, ''),
    ...(options.token !== undefined ? { accessToken: options.token } : {})
  })
  const transport = createOryTransport(options.adminUrl, { timeoutMs: options.timeoutMs })
  return {
    configuration,
    close: transport.close,
    async call (operation: string, build: () => Promise<OryRequest>): Promise<OryResponse> {
      try {
        return await transport.send(await build())
      } catch (err) {
        const code = err instanceof TransportError ? err.code : 'no answer'
        throw new UpstreamError(service, true, undefined, `${service} ${operation}: ${code}`)
      }
    },
    /** An answer the caller cannot use, as an error. */
    refused (operation: string, status: number): UpstreamError {
      const transient = status >= 500 || status === 429 || status === 408
      return new UpstreamError(service, transient, status, `${service} ${operation}: HTTP ${status}`)
    }
  }
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

/** The Kratos admin calls the relay makes. */
export interface KratosAdmin {
  /**
   * Revokes every session of the identity. Kratos answers 204, or 404 when the identity has no
   * session left (or is gone): both mean there is nothing left to revoke.
   */
  revokeIdentitySessions: (identityId: string) => Promise<void>
  /** Closes the idle connections to Kratos; calls in flight finish. */
  close: () => void
}

export function createKratosAdmin (options: AdminClientOptions): KratosAdmin {
  const api = adminApi('kratos', options)
  const identities = IdentityApiAxiosParamCreator(api.configuration)
  const deleteIdentitySessions = uuidPathTemplate(async (id) => await identities.deleteIdentitySessions(id))
  const operation = 'DELETE /admin/identities/{id}/sessions'
  return {
    async revokeIdentitySessions (identityId) {
      const { status } = await api.call(operation, async () => await deleteIdentitySessions(identityId))
      if (status !== 204 && status !== 404) throw api.refused(operation, status)
    },
    close: api.close
  }
}

/** The Hydra admin calls the relay makes. */
export interface HydraAdmin {
  /** The login session id (`sid`) of a login challenge, or null when Hydra does not know it (404/410). */
  loginSessionId: (loginChallenge: string) => Promise<string | null>
  /** Revokes one login session; Hydra then sends back-channel logout to every client of it. */
  revokeLoginSession: (sid: string) => Promise<void>
  /** Revokes every consent session of the subject, and the tokens issued under them. */
  revokeConsentSessions: (subject: string) => Promise<void>
  /** Closes the idle connections to Hydra; calls in flight finish. */
  close: () => void
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
      const { status } = await api.call(operation, async () => await oauth2.revokeOAuth2LoginSessions(undefined, sid))
      if (status !== 204 && status !== 404) throw api.refused(operation, status)
    },
    async revokeConsentSessions (subject) {
      const operation = 'DELETE /admin/oauth2/auth/sessions/consent'
      const { status } = await api.call(operation, async () => await oauth2.revokeOAuth2ConsentSessions(subject, undefined, undefined, true))
      if (status !== 204 && status !== 404) throw api.refused(operation, status)
    },
    close: api.close
  }
}
