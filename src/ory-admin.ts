import { createRequire } from 'node:module'
import type * as OryClient from '@ory/client'

// @ory/client is CommonJS with a 1.2 MB generated api.js: loaded through require, it costs ~15 MB
// less resident memory than through an ESM import (which makes Node scan the whole file for exports).
const { Configuration, IdentityApi, OAuth2Api } = createRequire(import.meta.url)('@ory/client') as typeof OryClient

export type OryService = 'kratos' | 'hydra'

/**
 * A failed call to an Ory admin API, in our words only: an axios error carries the request's headers
 * (the admin token among them) and must never reach a log. `transient` covers what retrying can
 * cure by itself (no answer, a timeout, 5xx, 429); any other answer means a misconfiguration.
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

interface AxiosLikeError {
  response?: { status?: number }
  code?: string
}

function statusOf (err: unknown): number | undefined {
  return (err as AxiosLikeError | null)?.response?.status
}

/** Turns whatever the client threw into an {@link UpstreamError}, dropping the original. */
export function upstreamError (service: OryService, operation: string, err: unknown): UpstreamError {
  const status = statusOf(err)
  if (status === undefined) {
    const code = (err as AxiosLikeError | null)?.code ?? 'no answer'
    return new UpstreamError(service, true, undefined, `${service} ${operation}: ${code}`)
  }
  const transient = status >= 500 || status === 429 || status === 408
  return new UpstreamError(service, transient, status, `${service} ${operation}: HTTP ${status}`)
}

export interface AdminClientOptions {
  adminUrl: string
  /** Sent as `Authorization: Bearer` (Ory Network API keys). */
  token?: string | undefined
  timeoutMs: number
}

function configuration (options: AdminClientOptions): OryClient.Configuration {
  return new Configuration({
    basePath: options.adminUrl.replace(/\/+$/, ''),
    ...(options.token !== undefined ? { accessToken: options.token } : {}),
    baseOptions: { timeout: options.timeoutMs, maxRedirects: 0 }
  })
}

/** The Kratos admin calls the relay makes. */
export interface KratosAdmin {
  /**
   * Revokes every session of the identity. Kratos answers 204, or 404 when the identity has no
   * session left (or is gone): both mean there is nothing left to revoke.
   */
  revokeIdentitySessions: (identityId: string) => Promise<void>
}

export function createKratosAdmin (options: AdminClientOptions): KratosAdmin {
  const identities = new IdentityApi(configuration(options))
  return {
    async revokeIdentitySessions (identityId) {
      try {
        await identities.deleteIdentitySessions({ id: identityId })
      } catch (err) {
        if (statusOf(err) === 404) return
        throw upstreamError('kratos', 'DELETE /admin/identities/{id}/sessions', err)
      }
    }
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
}

export function createHydraAdmin (options: AdminClientOptions): HydraAdmin {
  const oauth2 = new OAuth2Api(configuration(options))
  return {
    async loginSessionId (loginChallenge) {
      let sessionId: unknown
      try {
        sessionId = (await oauth2.getOAuth2LoginRequest({ loginChallenge })).data.session_id
      } catch (err) {
        const status = statusOf(err)
        if (status === 404 || status === 410) return null
        throw upstreamError('hydra', 'GET /admin/oauth2/auth/requests/login', err)
      }
      if (typeof sessionId !== 'string' || sessionId === '') {
        throw new UpstreamError('hydra', false, 200, 'hydra GET /admin/oauth2/auth/requests/login: no session_id in the answer')
      }
      return sessionId
    },
    async revokeLoginSession (sid) {
      try {
        await oauth2.revokeOAuth2LoginSessions({ sid })
      } catch (err) {
        if (statusOf(err) === 404) return
        throw upstreamError('hydra', 'DELETE /admin/oauth2/auth/sessions/login', err)
      }
    },
    async revokeConsentSessions (subject) {
      try {
        await oauth2.revokeOAuth2ConsentSessions({ subject, all: true })
      } catch (err) {
        if (statusOf(err) === 404) return
        throw upstreamError('hydra', 'DELETE /admin/oauth2/auth/sessions/consent', err)
      }
    }
  }
}
