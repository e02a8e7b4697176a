import type { Clock } from '../clock.js'
import { tokenRejected } from '../errors.js'
import { replayWindowSeconds, type TokenAgeRules } from '../token/replay-window.js'
import type { LogoutTokenVerifier } from '../token/logout-token.js'
import type { NewJob, RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'
import { isUuid } from '../uuid.js'

/** Kratos identity ids are UUIDs; a value that is not one cannot name a Kratos identity. */
export function isIdentityId (value: unknown): value is string {
  return isUuid(value)
}

export interface LogoutDeps {
  verify: LogoutTokenVerifier
  index: SessionIndex
  queue: RevocationQueue
  /** Wakes the local worker after an enqueue. */
  onEnqueued: () => void
  /** The age rules of logout tokens: a `jti` is remembered as long as its token could pass them. */
  tokens: TokenAgeRules
  clock: Clock
}

export type LogoutResult =
  /** A revocation of every Kratos session of the identity is queued durably. */
  | { outcome: 'queued', identityId: string, resolvedBy: 'sid' | 'sub' }
  /** Another token of the same logout (another client of the same sid) already queued it. */
  | { outcome: 'duplicate', identityId: string }
  /** Nobody to revoke now; a login hook arriving late for the sid will revoke at once. */
  | { outcome: 'unresolved' }
  /**
   * Hydra's echo of the relay's own revocation of this sid (after a credentials change): nothing is
   * queued, Kratos' sessions are Kratos' business there. The `jti` is consumed all the same.
   */
  | { outcome: 'already_handled', identityId?: string }

/**
 * Accepts one back-channel logout: validates the token, resolves the identity (sid index first, then
 * a `sub` that is a Kratos identity id), then in one atomic step refuses a replayed `jti`, queues one
 * revocation per sid and consumes the `jti` — so a failure anywhere leaves the token acceptable when
 * the issuer resends it, and the answer 200 always means the revocation is recorded durably.
 *
 * A sid the relay itself asked Hydra to revoke after a credentials change is marked: the same atomic
 * step consumes the `jti` of its tokens and queues nothing (`already_handled`).
 */
export async function acceptLogout (deps: LogoutDeps, token: string): Promise<LogoutResult> {
  const claims = await deps.verify(token)

  const subjectIdentity = isIdentityId(claims.sub) ? claims.sub.toLowerCase() : null
  let identityId = subjectIdentity
  let resolvedBy: 'sid' | 'sub' = 'sub'
  if (claims.sid !== undefined) {
    const indexed = await deps.index.resolve(claims.sid, subjectIdentity === null)
    if (indexed !== null) {
      identityId = indexed
      resolvedBy = 'sid'
    }
  }

  const job: NewJob | undefined = identityId === null
    ? undefined
    : {
        target: { kind: 'kratos-sessions', identityId },
        ...(claims.sid !== undefined ? { sid: claims.sid } : {}),
        cause: { kind: 'backchannel-logout', clientId: claims.aud[0] ?? '', jti: claims.jti },
        dedupeKey: claims.sid !== undefined ? `sid:${claims.sid}` : `jti:${claims.jti}`
      }
  const record = await deps.queue.acceptLogout({
    issuer: claims.iss,
    jti: claims.jti,
    // The jti, and the sid's dedupe key, for as long as this token could be accepted anywhere.
    rememberSeconds: replayWindowSeconds(claims.iat, deps.clock(), deps.tokens),
    ...(claims.sid !== undefined ? { sid: claims.sid } : {}),
    ...(job !== undefined ? { job } : {})
  })
  if (record === 'replay') throw tokenRejected('replay', 'logout_token was already used (jti)')
  if (record === 'handled') return identityId === null ? { outcome: 'already_handled' } : { outcome: 'already_handled', identityId }
  if (identityId === null) return { outcome: 'unresolved' }
  if (record === 'duplicate') return { outcome: 'duplicate', identityId }
  deps.onEnqueued()
  return { outcome: 'queued', identityId, resolvedBy }
}
