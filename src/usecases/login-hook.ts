import { RelayError } from '../errors.js'
import { hookBody, invalidHookBody, optionalString } from './hook-body.js'
import { UpstreamError, type HydraAdmin } from '../ory/admin.js'
import type { JobCause, RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'

/** Who logged in, and to which Hydra login session — given directly or as Hydra's login challenge. */
export type LoginHookInput =
  | { identityId: string, sid: string }
  | { identityId: string, loginChallenge: string }

/** Hydra's sids are UUIDs; a login/consent app's own may be longer, but not without bound. */
export const MAX_SID_LENGTH = 256
const MAX_CHALLENGE_LENGTH = 4096

/**
 * Reads the hook's JSON body: `{"identity_id", "sid"}` or `{"identity_id", "login_challenge"}`.
 * Other members are ignored. Each error names the field at fault.
 */
export function parseLoginHookBody (body: unknown): LoginHookInput {
  const { identityId, fields } = hookBody(body)
  const sid = optionalString(fields, 'sid', MAX_SID_LENGTH)
  const loginChallenge = optionalString(fields, 'login_challenge', MAX_CHALLENGE_LENGTH)
  if (sid !== undefined && loginChallenge !== undefined) throw invalidHookBody('sid', 'give sid or login_challenge, not both')
  if (sid !== undefined) return { identityId, sid }
  if (loginChallenge !== undefined) return { identityId, loginChallenge }
  throw invalidHookBody('login_challenge', 'sid or login_challenge is required')
}

export interface LoginHookDeps {
  index: SessionIndex
  queue: RevocationQueue
  hydra: Pick<HydraAdmin, 'loginSessionId'>
  onEnqueued: () => void
  /** How long the late revocation dedupes with the logout tokens of the same sid. */
  rememberSeconds: number
}

export interface LoginHookResult {
  sid: string
  /** A logout for this sid arrived before its login was indexed: the revocation is now queued. */
  lateLogout: boolean
}

/**
 * Indexes a login: resolves the sid (from Hydra when a login challenge is given) and stores
 * sid → identity. When a logout for that sid came first, queues the revocation it could not make
 * then. Idempotent, so that a hook retried after a failure does no harm; a live sid of another
 * identity is refused (`ERR_SID_CONFLICT`, 409) and keeps its identity, so that a holder of the hook
 * key cannot redirect someone's logout to another identity.
 */
export async function indexLogin (deps: LoginHookDeps, input: LoginHookInput): Promise<LoginHookResult> {
  const sid = 'sid' in input ? input.sid : await sessionIdOf(deps.hydra, input.loginChallenge)
  const indexed = await indexSid(deps, input.identityId, sid, { kind: 'late-login-hook' })
  if (indexed.outcome === 'conflict') {
    throw new RelayError('ERR_SID_CONFLICT', 'this login session is indexed for another identity; a sid is never remapped',
      { field: 'sid' in input ? 'sid' : 'login_challenge' })
  }
  return { sid, lateLogout: indexed.lateLogout }
}

/** What indexing one sid did. */
export type IndexSidResult =
  | { outcome: 'indexed', lateLogout: boolean }
  /** The sid is live and mapped to another identity: nothing written. */
  | { outcome: 'conflict' }

/**
 * Stores sid → identity as the login hook does (for it, and for the backfill of logins made before
 * the relay): the remap rule of {@link SessionIndex.add}, and when a logout for the sid came first,
 * the revocation of the identity's Kratos sessions queued with `cause`.
 */
export async function indexSid (
  deps: { index: Pick<SessionIndex, 'add' | 'forgetLogout'>, queue: Pick<RevocationQueue, 'enqueue'>, onEnqueued: () => void, rememberSeconds: number },
  identityId: string, sid: string, cause: JobCause
): Promise<IndexSidResult> {
  const indexed = await deps.index.add(sid, identityId)
  if (indexed.outcome === 'conflict') return indexed
  if (!indexed.loggedOut) return { outcome: 'indexed', lateLogout: false }

  const [queued] = await deps.queue.enqueue([{
    target: { kind: 'kratos-sessions', identityId },
    sid,
    cause,
    dedupeKey: `sid:${sid}`
  }], deps.rememberSeconds)
  if (queued?.enqueued === true) deps.onEnqueued()
  await deps.index.forgetLogout(sid)
  return { outcome: 'indexed', lateLogout: true }
}

async function sessionIdOf (hydra: Pick<HydraAdmin, 'loginSessionId'>, loginChallenge: string): Promise<string> {
  let sid: string | null
  try {
    sid = await hydra.loginSessionId(loginChallenge)
  } catch (err) {
    if (err instanceof UpstreamError) {
      throw new RelayError('ERR_HYDRA_UNAVAILABLE', "Hydra's admin API cannot resolve the login challenge right now", { cause: err })
    }
    throw err
  }
  if (sid === null) {
    throw new RelayError('ERR_LOGIN_CHALLENGE_UNKNOWN', 'Hydra does not know this login_challenge', { field: 'login_challenge' })
  }
  return sid
}
