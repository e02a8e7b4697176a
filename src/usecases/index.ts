import type { Clock } from '../clock.js'
import type { HydraAdmin } from '../ory/admin.js'
import type { AuditTrail } from '../store/audit-trail.js'
import type { DeadJob, DeadLetterCursor, Job, OperatorRetryCause, RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'
import type { LogoutTokenVerifier } from '../token/logout-token.js'
import { longestReplayWindowSeconds, type TokenAgeRules } from '../token/replay-window.js'
import {
  handledLogoutSeconds, logOutAfterCredentialsChange,
  type CredentialsChangedInput, type CredentialsChangedResult, type RevocationTiming
} from './credentials-changed.js'
import { revocationsOf, type RevocationView } from './audit.js'
import { dropDeadLetter, listDeadLetters, retryDeadLetter, type DeadLetterList } from './dead-letters.js'
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
  /** A page of dead letters, oldest buried first, with when their retention removes each. */
  deadLetters: (input: { limit: number, cursor?: DeadLetterCursor }) => Promise<DeadLetterList>
  /** Sends a dead letter back to the queue as an operator's retry. */
  retryDeadLetter: (id: string, cause: OperatorRetryCause) => Promise<Job>
  /** Removes a dead letter for good. */
  dropDeadLetter: (id: string) => Promise<DeadJob>
  /** An identity's finished revocations, newest first. */
  revocationsOf: (identityId: string, limit: number) => Promise<RevocationView[]>
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
  audit: AuditTrail
  /** DEAD_LETTER_MAX_AGE and DEAD_LETTER_MAX_COUNT, to say when each dead letter goes. */
  deadLetterRetention: { maxAgeMs: number, maxCount: number }
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
  const deadLetterDeps = { queue: deps.queue, retention: deps.deadLetterRetention, clock: deps.clock, onEnqueued: deps.onEnqueued }
  return {
    logout: async (token) => await acceptLogout(logoutDeps, token),
    indexLogin: async (input) => await indexLogin(loginDeps, input),
    logOutEverywhere: async (input) => await logOutEverywhere(globalLogoutDeps, input),
    identitySessions: async (identityId) => await knownSessions(deps, identityId),
    credentialsChanged: async (input) => await logOutAfterCredentialsChange(credentialsDeps, input),
    deadLetters: async (input) => await listDeadLetters(deadLetterDeps, input),
    retryDeadLetter: async (id, cause) => await retryDeadLetter(deadLetterDeps, id, cause),
    dropDeadLetter: async (id) => await dropDeadLetter(deadLetterDeps, id),
    revocationsOf: async (identityId, limit) => await revocationsOf(deps, identityId, limit)
  }
}
