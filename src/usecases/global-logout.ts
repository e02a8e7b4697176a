import { createHash } from 'node:crypto'
import { RelayError } from '../errors.js'
import { isIdentityId } from './logout.js'
import type { JobCause, NewJob, RevocationQueue, RevocationTarget } from '../store/revocation-queue.js'
import type { IndexedSid, SessionIndex } from '../store/session-index.js'

/**
 * How long a global logout remembers the steps it queued, so that a second call for the same identity
 * in the same state (a double click, a retried request) queues nothing twice. Short on purpose: a
 * later call must act again.
 */
export const GLOBAL_LOGOUT_DEDUPE_SECONDS = 10

/** What an operator asks for: every session of one identity ended, and optionally its consents. */
export interface GlobalLogoutInput {
  identityId: string
  /** Also revoke every consent session of the subject, and the tokens Hydra issued under them. */
  revokeConsents: boolean
  /** Who asked, for the audit record of each step. */
  cause: JobCause
}

/** One step of a global logout, and whether this call queued it or found it queued moments ago. */
export interface GlobalLogoutStep {
  target: RevocationTarget
  status: 'queued' | 'already_queued'
}

export interface GlobalLogoutResult {
  identityId: string
  /** The sids the index knows for the identity: one Hydra login session revocation each. */
  sids: string[]
  steps: GlobalLogoutStep[]
}

export interface GlobalLogoutDeps {
  index: Pick<SessionIndex, 'sidsOf'>
  queue: Pick<RevocationQueue, 'enqueue'>
  /** Wakes the local worker after an enqueue. */
  onEnqueued: () => void
  /** Defaults to {@link GLOBAL_LOGOUT_DEDUPE_SECONDS}. */
  dedupeSeconds?: number
}

function invalid (field: string, message: string): RelayError {
  return new RelayError('ERR_ADMIN_REQUEST_INVALID', message, { field })
}

/** The `{id}` of an admin route: a Kratos identity id (a UUID), kept in Kratos' lower case. */
export function parseIdentityId (value: unknown): string {
  if (!isIdentityId(value)) throw invalid('id', 'id must be a Kratos identity id (a UUID)')
  return value.toLowerCase()
}

/**
 * Reads the optional body of a global logout: nothing, or `{"revoke_consents": boolean}`. Unknown
 * members are refused rather than ignored, so that a misspelt option never revokes less than asked.
 */
export function parseGlobalLogoutBody (body: unknown): { revokeConsents: boolean } {
  if (body === undefined) return { revokeConsents: false }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('body', 'the body must be a JSON object')
  }
  const fields = body as Record<string, unknown>
  for (const name of Object.keys(fields)) {
    if (name !== 'revoke_consents') throw invalid(name, `${name} is not a member of this request (only revoke_consents)`)
  }
  const revokeConsents = 'revoke_consents' in fields ? fields['revoke_consents'] : false
  if (typeof revokeConsents !== 'boolean') throw invalid('revoke_consents', 'revoke_consents must be true or false')
  return { revokeConsents }
}

/**
 * Logs an identity out everywhere. Hydra's revocation by subject sends no back-channel logout to any
 * client; its revocation by `sid` does (OIDC Back-Channel Logout 1.0 §2.5) — and the relay knows every
 * sid of the identity. So this queues, in one atomic enqueue: one Hydra login session revocation per
 * indexed sid, one revocation of every Kratos session of the identity, and with `revokeConsents` the
 * revocation of the subject's consent sessions and their tokens. The worker runs them with the
 * queue's retries; the answer means they are recorded durably, not done.
 *
 * The Kratos step is queued even when the index knows no sid: the identity may hold Kratos sessions
 * that never went through Hydra, or whose sids expired from the index; Kratos answers 404 when there
 * is nothing to revoke, which is success.
 *
 * A repeated call is harmless: each step's dedupe key names the identity's indexed sids, so a call
 * moments after another one in the same state queues nothing new, while a call after a new login, or
 * once {@link GLOBAL_LOGOUT_DEDUPE_SECONDS} passed, acts again.
 */
export async function logOutEverywhere (deps: GlobalLogoutDeps, input: GlobalLogoutInput): Promise<GlobalLogoutResult> {
  const sids = (await deps.index.sidsOf(input.identityId)).map((entry) => entry.sid).sort()
  const state = fingerprint(sids)
  const { cause } = input
  const jobs: NewJob[] = sids.map((sid) => ({
    target: { kind: 'hydra-login-session', sid },
    sid,
    identityId: input.identityId,
    cause,
    dedupeKey: loginSessionKey(sid)
  }))
  jobs.push({
    target: { kind: 'kratos-sessions', identityId: input.identityId },
    cause,
    dedupeKey: `admin:kratos-sessions:${input.identityId}:${state}`
  })
  if (input.revokeConsents) {
    jobs.push({
      target: { kind: 'hydra-consent-sessions', subject: input.identityId },
      cause,
      // Hydra finds the clients to notify of a login session's end through its consents: revoked
      // first, they would leave every client of the session unnotified. So the consents wait.
      after: sids.map(loginSessionKey),
      dedupeKey: `admin:hydra-consent-sessions:${input.identityId}:${state}`
    })
  }

  const queued = await deps.queue.enqueue(jobs, deps.dedupeSeconds ?? GLOBAL_LOGOUT_DEDUPE_SECONDS)
  const steps = jobs.map((job, i): GlobalLogoutStep => ({
    target: job.target,
    status: queued[i]?.enqueued === true ? 'queued' : 'already_queued'
  }))
  if (steps.some((step) => step.status === 'queued')) deps.onEnqueued()
  return { identityId: input.identityId, sids, steps }
}

/** A sid the relay knows for an identity, for people: its expiry as an ISO 8601 date. */
export interface KnownSession {
  sid: string
  expiresAt: string
}

/**
 * The sids the index holds for an identity, soonest expiry first. A sid stays listed until its
 * mapping expires (SID_TTL), also after a logout: the index records logins, not Hydra's state.
 */
export async function knownSessions (deps: { index: Pick<SessionIndex, 'sidsOf'> }, identityId: string): Promise<KnownSession[]> {
  const sids: IndexedSid[] = await deps.index.sidsOf(identityId)
  return [...sids]
    .sort((a, b) => a.expiresAt - b.expiresAt || a.sid.localeCompare(b.sid))
    .map((entry) => ({ sid: entry.sid, expiresAt: new Date(entry.expiresAt).toISOString() }))
}

/** The dedupe key of the step that revokes one login session at Hydra. */
function loginSessionKey (sid: string): string {
  return `admin:hydra-login-session:${sid}`
}

/** A short digest of the sorted sids: the identity's login state as the index sees it. */
export function fingerprint (sids: readonly string[]): string {
  return createHash('sha256').update(sids.join('\n')).digest('base64url').slice(0, 16)
}
