import type { Logger } from 'pino'
import type { RevocationRecord } from '../store/revocation-queue.js'
import { revocationView } from '../usecases/audit.js'

/**
 * The audit log line: each finished revocation (done or dead-lettered) as one JSON line marked
 * `"audit":true,"event":"revocation"`, with the record as the admin API shows it, so that a log pipeline
 * can keep the trail longer than Redis does (AUDIT_MAX_AGE). Written at info, also when LOG_LEVEL is
 * warn or error (only `silent` silences it): an audit trail is not a debugging aid. It names keys by
 * their fingerprint and tokens by their `jti`, never more.
 */
export function createAuditLog (log: Logger): (record: RevocationRecord) => void {
  const level = log.level === 'silent' || log.levelVal <= (log.levels.values['info'] ?? 30) ? log.level : 'info'
  // The marker is bound once: pino serialises a child's bindings when it is made, not per line.
  const audit = log.child({ audit: true, event: 'revocation' }, { level })
  return (record) => {
    audit.info(revocationView(record), 'revocation finished')
  }
}
