import type { HydraAdmin, KratosAdmin } from '../ory/admin.js'
import type { RevocationTarget } from '../store/revocation-queue.js'

/** Performs one queued revocation against the Ory admin API it names. */
export function createRevoker (kratos: KratosAdmin, hydra: HydraAdmin): (target: RevocationTarget) => Promise<void> {
  return async (target) => {
    switch (target.kind) {
      case 'kratos-sessions':
        return await kratos.revokeIdentitySessions(target.identityId)
      case 'hydra-login-session':
        return await hydra.revokeLoginSession(target.sid)
      case 'hydra-consent-sessions':
        return await hydra.revokeConsentSessions(target.subject)
    }
  }
}
