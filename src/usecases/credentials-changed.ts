import type { NewJob, RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'
import { longestReplayWindowSeconds, type TokenAgeRules } from '../token/replay-window.js'
import { fingerprint } from './global-logout.js'
import { hookBody, invalidHookBody, optionalString } from './hook-body.js'

/** The Kratos flows whose `after` hooks call the credentials hook. */
export type CredentialsFlow = 'settings' | 'recovery'

/** A settings method (`password`, `lookup_secret`, …) or a recovery method (`code`, `link`) is short. */
export const MAX_METHOD_LENGTH = 64

/**
 * How long a credentials change remembers what it queued, so that a repeated hook call (Kratos'
 * retry, a second method changed at once) queues nothing twice. Short, as the admin API's.
 */
export const CREDENTIALS_CHANGED_DEDUPE_SECONDS = 10

/** What Kratos tells: whose credentials changed, in which flow, and by which method when it knows. */
export interface CredentialsChangedInput {
  identityId: string
  flow: CredentialsFlow
  method?: string
}

export interface CredentialsChangedResult {
  identityId: string
  /** The sids the index knows for the identity: one Hydra login session revocation each. */
  sids: string[]
  /** Jobs this call asked for: one per sid, and the consents when configured. */
  steps: number
  /** Of them, those queued now; the others were queued moments ago by the same change. */
  queued: number
}

export interface CredentialsChangedDeps {
  index: Pick<SessionIndex, 'sidsOf'>
  queue: Pick<RevocationQueue, 'enqueue'>
  /** Wakes the local worker after an enqueue. */
  onEnqueued: () => void
  /** CREDENTIAL_CHANGE_REVOKE_CONSENTS: also revoke the subject's consents and their tokens. */
  revokeConsents: boolean
  /** How long each sid is marked as revoked by the relay: see {@link handledLogoutSeconds}. */
  markSeconds: number
  /** Defaults to {@link CREDENTIALS_CHANGED_DEDUPE_SECONDS}. */
  dedupeSeconds?: number
}

/** The revocation worker's timing: how late a queued job may still run. */
export interface RevocationTiming {
  maxAgeMs: number
  backoffMaxMs: number
  leaseMs: number
}

/**
 * Reads the hook's JSON body: `{"identity_id", "flow": "settings"|"recovery", "method"?}`. Other
 * members are ignored, as the login hook ignores them. Each error names the field at fault.
 */
export function parseCredentialsChangedBody (body: unknown): CredentialsChangedInput {
  const { identityId, fields } = hookBody(body)
  const flow = fields['flow']
  if (flow !== 'settings' && flow !== 'recovery') throw invalidHookBody('flow', 'flow must be "settings" or "recovery"')
  const method = optionalString(fields, 'method', MAX_METHOD_LENGTH)
  return method === undefined ? { identityId, flow } : { identityId, flow, method }
}

/**
 * How long a sid stays marked as revoked by the relay: as long as its Hydra revocation may still run,
 * plus the life of the logout tokens Hydra then sends. A job is given up only at a failure past
 * REVOCATION_MAX_AGE, so its last attempt may start a backoff (REVOCATION_BACKOFF_MAX) after that age,
 * and run again a lease later when its worker died; the tokens of that attempt are accepted for the
 * longest replay window after it.
 */
export function handledLogoutSeconds (revocation: RevocationTiming, tokens: TokenAgeRules): number {
  const jobSeconds = Math.ceil((revocation.maxAgeMs + revocation.backoffMaxMs + revocation.leaseMs) / 1000)
  return jobSeconds + longestReplayWindowSeconds(tokens)
}

/**
 * After a password change (or another credential) or an account recovery, ends every OAuth2 login
 * session of the identity at Hydra, so that every app that trusts them is logged out too. Queues, in
 * one enqueue (in chunks of 100 for very large identities), one Hydra login session revocation per
 * indexed sid — Hydra then sends back-channel logout to every client of each — and, with
 * `revokeConsents`, the revocation of the subject's consents and the tokens issued under them.
 *
 * No Kratos revocation: Kratos' own `revoke_active_sessions`, after this hook in the same flow, ends
 * the other Kratos sessions and keeps the one the user is changing their password in. So each sid is
 * marked, with its job and in the same atomic step, as revoked by the relay: Hydra's back-channel
 * logouts for it are then answered as already handled (see `acceptLogout`) instead of ending every
 * Kratos session of the identity, the current one included.
 *
 * An identity without indexed sids has nothing at Hydra to end (only its consents, when configured,
 * whose tokens may outlive the index). A repeated call within the dedupe window queues nothing twice.
 */
export async function logOutAfterCredentialsChange (deps: CredentialsChangedDeps, input: CredentialsChangedInput): Promise<CredentialsChangedResult> {
  const sids = (await deps.index.sidsOf(input.identityId)).map((entry) => entry.sid).sort()
  const cause = { kind: 'credentials-changed', flow: input.flow, ...(input.method !== undefined ? { method: input.method } : {}) } as const
  const loginSessionKey = (sid: string): string => `credentials:hydra-login-session:${sid}`
  const jobs: NewJob[] = sids.map((sid) => ({
    target: { kind: 'hydra-login-session', sid },
    sid,
    cause,
    dedupeKey: loginSessionKey(sid),
    handledLogoutSeconds: deps.markSeconds
  }))
  if (deps.revokeConsents) {
    jobs.push({
      target: { kind: 'hydra-consent-sessions', subject: input.identityId },
      cause,
      // After the login sessions: Hydra finds the clients to notify through the consents.
      after: sids.map(loginSessionKey),
      dedupeKey: `credentials:hydra-consent-sessions:${input.identityId}:${fingerprint(sids)}`
    })
  }
  if (jobs.length === 0) return { identityId: input.identityId, sids, steps: 0, queued: 0 }

  const results = await deps.queue.enqueue(jobs, deps.dedupeSeconds ?? CREDENTIALS_CHANGED_DEDUPE_SECONDS)
  const queued = results.filter((result) => result.enqueued).length
  if (queued > 0) deps.onEnqueued()
  return { identityId: input.identityId, sids, steps: jobs.length, queued }
}
