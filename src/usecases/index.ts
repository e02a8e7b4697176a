import type { Clock } from '../clock.js'
import type { HydraAdmin } from '../ory/admin.js'
import type { RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'
import type { LogoutTokenVerifier } from '../token/logout-token.js'
import { longestReplayWindowSeconds, type TokenAgeRules } from '../token/replay-window.js'
import {
  handledLogoutSeconds, logOutAfterCredentialsChange,
  type CredentialsChangedInput, type CredentialsChangedResult, type RevocationTiming
} from './credentials-changed.js'
import { knownSessions, logOutEverywhere, type GlobalLogoutInput, type GlobalLogoutResult, type KnownSession } from './global-logout.js'
import { indexLogin, type LoginHookInput, type LoginHookResult } from './login-hook.js'
import { acceptLogout, type LogoutResult } from './logout.js'

/** What the relay does, each use case with its dependencies bound: what the HTTP routes call. */
export interface UseCases {
  /** Accepts one back-channel logout token (OIDC BCL §2.6–2.8). */
  logout: (token: string) => Promise<LogoutResult>
  /** Indexes a login: sid → identity. */
  indexLogin: (input: LoginHookInput) => Promise<LoginHookResult>
  /** Logs an identity out everywhere: queues the revocation of each of its sids at Hydra, and of its Kratos sessions. */
  logOutEverywhere: (input: GlobalLogoutInput) => Promise<GlobalLogoutResult>
  /** The sids the index knows for an identity. */
  identitySessions: (identityId: string) => Promise<KnownSession[]>
  /** A credential changed or the account was recovered: queues the revocation of each of its sids at Hydra. */
  credentialsChanged: (input: CredentialsChangedInput) => Promise<CredentialsChangedResult>
}

export interface UseCaseDeps {
  index: SessionIndex
  queue: RevocationQueue
  verify: LogoutTokenVerifier
  hydra: Pick<HydraAdmin, 'loginSessionId'>
  /** Wakes the local worker after an enqueue. */
  onEnqueued: () => void
  /** The token rules whose windows decide how long a `jti` must be remembered. */
  tokens: TokenAgeRules
  /** The worker's timing, which decides how long a sid revoked by the relay stays marked. */
  revocation: RevocationTiming
  /** CREDENTIAL_CHANGE_REVOKE_CONSENTS. */
  credentialChange: { revokeConsents: boolean }
  clock: Clock
}

/** Binds each use case to its dependencies, once. */
export function createUseCases (deps: UseCaseDeps): UseCases {
  const logoutDeps = { verify: deps.verify, index: deps.index, queue: deps.queue, onEnqueued: deps.onEnqueued, tokens: deps.tokens, clock: deps.clock }
  // A late hook's revocation dedupes with every token of the same logout that may still arrive.
  const loginDeps = { index: deps.index, queue: deps.queue, hydra: deps.hydra, onEnqueued: deps.onEnqueued, rememberSeconds: longestReplayWindowSeconds(deps.tokens) }
  const globalLogoutDeps = { index: deps.index, queue: deps.queue, onEnqueued: deps.onEnqueued }
  const credentialsDeps = {
    ...globalLogoutDeps,
    revokeConsents: deps.credentialChange.revokeConsents,
    markSeconds: handledLogoutSeconds(deps.revocation, deps.tokens)
  }
  return {
    logout: async (token) => await acceptLogout(logoutDeps, token),
    indexLogin: async (input) => await indexLogin(loginDeps, input),
    logOutEverywhere: async (input) => await logOutEverywhere(globalLogoutDeps, input),
    identitySessions: async (identityId) => await knownSessions(deps, identityId),
    credentialsChanged: async (input) => await logOutAfterCredentialsChange(credentialsDeps, input)
  }
}
