import { UpstreamError, type HydraAdmin, type KratosAdmin } from '../ory/admin.js'
import type { RevocationTarget } from '../store/revocation-queue.js'
import { RevocationFailure } from './failure.js'

/**
 * Performs one queued revocation against the Ory admin API it names. A failure reaches the worker as
 * a {@link RevocationFailure}, whose kind says whether retrying can cure it.
 */
export function createRevoker (kratos: KratosAdmin, hydra: HydraAdmin): (target: RevocationTarget) => Promise<void> {
  return async (target) => {
    try {
      switch (target.kind) {
        case 'kratos-sessions':
          await kratos.revokeIdentitySessions(target.identityId)
          return
        case 'hydra-login-session':
          await hydra.revokeLoginSession(target.sid)
          return
        case 'hydra-consent-sessions':
          await hydra.revokeConsentSessions(target.subject)
      }
    } catch (err) {
      if (err instanceof UpstreamError) throw new RevocationFailure(err.transient ? 'transient' : 'refused', err.message, err.status, { cause: err })
      throw err
    }
  }
}
