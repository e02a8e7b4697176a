import { UpstreamError, type HydraAdmin, type KratosAdmin } from '../ory/admin.js'
import { PROOF_REQUESTS, type AdminApiGuard, type AdminService } from '../ory/admin-proof.js'
import type { RevocationTarget } from '../store/revocation-queue.js'
import { RevocationFailure } from './failure.js'
import type { RevocationDone } from './worker.js'

export interface RevokerDeps {
  kratos: KratosAdmin
  hydra: HydraAdmin
  /** Whether each admin URL is proven to be its admin API (see `AdminApiGuard`); none: always go. */
  guards?: Record<AdminService, AdminApiGuard>
}

/**
 * Performs one queued revocation against the Ory admin API it names. A failure reaches the worker as
 * a {@link RevocationFailure}, whose kind says whether retrying can cure it; while the admin URL is
 * not proven to answer its admin API, the revocation is `held` — it does not go out, since a 404 from
 * a route that does not exist must never read as "nothing left to revoke".
 */
export function createRevoker ({ kratos, hydra, guards }: RevokerDeps): (target: RevocationTarget) => Promise<RevocationDone> {
  return async (target) => {
    const service: AdminService = target.kind === 'kratos-sessions' ? 'kratos' : 'hydra'
    const guard = guards?.[service]
    const proof = guard === undefined ? undefined : guard.latest ?? await guard.current()
    if (guard !== undefined && proof?.state === 'wrong') {
      throw new RevocationFailure('held', `${PROOF_REQUESTS[service].variable} is not ${PROOF_REQUESTS[service].what}: ${proof.reason}`, undefined, { retryInMs: guard.holdMs })
    }
    try {
      switch (target.kind) {
        case 'kratos-sessions':
          return await kratos.revokeIdentitySessions(target.identityId)
        case 'hydra-login-session':
          return await hydra.revokeLoginSession(target.sid)
        case 'hydra-consent-sessions':
          return await hydra.revokeConsentSessions(target.subject)
      }
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err
      // An answer that contradicts the proof: prove the URL again now; the next jobs are held if it
      // fails, while this one is retried and, should that go on, dead-lettered with its error.
      if (err.misrouted) guard?.suspect()
      throw new RevocationFailure(err.transient ? 'transient' : 'refused', err.message, err.status, { cause: err })
    }
  }
}
